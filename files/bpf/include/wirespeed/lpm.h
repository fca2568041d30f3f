/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Address lists as LPM tries, shared by every program: one key layout per
 * family (xdp_map_entry writes them as "10.0.0.0/8" and "2001:db8::/32"),
 * values count the packets that matched.
 */
#ifndef WIRESPEED_LPM_H
#define WIRESPEED_LPM_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "wirespeed/parsing.h"

struct ws_lpm_v4 {
	__u32 prefixlen;
	__be32 addr;
};

struct ws_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* An LPM trie keyed by _key, a {__u32 prefixlen; data} struct, of _value. */
#define WS_LPM_MAP_OF(_name, _key, _value, _max)		\
	struct {						\
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);		\
		__uint(max_entries, _max);			\
		__type(key, _key);				\
		__type(value, _value);				\
		__uint(map_flags, BPF_F_NO_PREALLOC);		\
	} _name SEC(".maps")

/* An LPM trie whose values count the packets that matched (u64). */
#define WS_LPM_MAP(_name, _key, _max) WS_LPM_MAP_OF(_name, _key, __u64, _max)

/* The counter of the entry of v4 or v6 covering a full address, or NULL. */
static __always_inline __u64 *ws_lpm_find(void *v4, void *v6, int family,
					   void *addr)
{
	if (family == 4) {
		struct ws_lpm_v4 key = { .prefixlen = 32 };

		__builtin_memcpy(&key.addr, addr, 4);
		return bpf_map_lookup_elem(v4, &key);
	} else {
		struct ws_lpm_v6 key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, addr, 16);
		return bpf_map_lookup_elem(v6, &key);
	}
}

#endif /* WIRESPEED_LPM_H */
