/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The allow list of sources (allow_v4, allow_v6) shared by firewall,
 * ssh_limiter and wireguard_filter; xdp_map_entry writes it as CIDRs.
 */
#ifndef WIRESPEED_ALLOW_H
#define WIRESPEED_ALLOW_H

#include "wirespeed/lpm.h"

#ifndef WS_ALLOW_MAX
#define WS_ALLOW_MAX 4096
#endif

/* Sources a program lets through untouched: allow_v4 and allow_v6. */
WS_LPM_MAP(allow_v4, struct ws_lpm_v4, WS_ALLOW_MAX);
WS_LPM_MAP(allow_v6, struct ws_lpm_v6, WS_ALLOW_MAX);

/*
 * The allow index (module_utils/_datapath/prefilter.py, AllowPrefilter):
 * bit n of prefilter_allow_v4 (word n / 64, bit n % 64) set when an entry
 * of allow_v4 may cover an address of the IPv4 /16 number n; written only
 * by the engine, which marks an entry's bits before it writes the entry.
 * prefilter_allow_state holds its generation; 0: not in use, every lookup
 * goes to the trie.  A clear bit spares a packet about to be dropped the
 * trie walk, the largest cost of the listed path after the deny lookup.
 */
#define WS_ALLOW_INDEX_WORDS (1 << 10)	/* 2^16 /16s, 64 per word: 8 KiB */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WS_ALLOW_INDEX_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
} prefilter_allow_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} prefilter_allow_state SEC(".maps");

/* 1: no entry of allow_v4 covers saddr (the index says so). */
static __always_inline int ws_v4_not_allowed(__be32 saddr)
{
	__u32 zero = 0, slot = bpf_ntohl(saddr) >> 16, word = slot >> 6;
	__u64 *generation = bpf_map_lookup_elem(&prefilter_allow_state, &zero);
	__u64 *bits;

	if (!generation || !*generation)
		return 0;
	bits = bpf_map_lookup_elem(&prefilter_allow_v4, &word);
	return bits && !(*bits & (1ULL << (slot & 63)));
}

/* Whether the packet's source is on the allow list (counting the hit). */
static __always_inline int ws_source_allowed(struct ws_packet *pkt)
{
	__u64 *hits;

	if (pkt->family == 4 && ws_v4_not_allowed(pkt->saddr.v4))
		return 0;
	hits = ws_lpm_find(&allow_v4, &allow_v6, pkt->family, &pkt->saddr);

	if (!hits)
		return 0;
	__sync_fetch_and_add(hits, 1);	/* shared across CPUs: atomic */
	return 1;
}

#endif /* WIRESPEED_ALLOW_H */
