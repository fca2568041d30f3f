/* SPDX-License-Identifier: GPL-2.0 */
/* One map of every kind xdp_map_entry writes, so the tests get them created with BTF and pinned. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct lpm_v4 {
	__u32 prefixlen;
	__u32 addr;
};

struct lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct flow {
	__be32 saddr;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct limit {
	__u64 rate;
	__u32 burst;
	__u8 enabled;
};

#define MAP(_name, _type, _key, _value, _max, _flags)	\
	struct {					\
		__uint(type, _type);			\
		__uint(max_entries, _max);		\
		__type(key, _key);			\
		__type(value, _value);			\
		__uint(map_flags, _flags);		\
	} _name SEC(".maps")

MAP(hash_v4, BPF_MAP_TYPE_HASH, __u32, __u64, 8, 0);
MAP(hash_v6, BPF_MAP_TYPE_HASH, struct in6_addr_key { __u8 a[16]; }, __u64, 8, 0);
MAP(lru, BPF_MAP_TYPE_LRU_HASH, __u32, __u64, 64, 0);
MAP(big, BPF_MAP_TYPE_HASH, __u32, __u64, 1024, 0);
MAP(lpm4, BPF_MAP_TYPE_LPM_TRIE, struct lpm_v4, __u32, 16, BPF_F_NO_PREALLOC);
MAP(lpm6, BPF_MAP_TYPE_LPM_TRIE, struct lpm_v6, __u32, 16, BPF_F_NO_PREALLOC);
MAP(flows, BPF_MAP_TYPE_HASH, struct flow, struct limit, 16, 0);
MAP(limits, BPF_MAP_TYPE_ARRAY, __u32, struct limit, 4, 0);
MAP(pcpu_array, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, 4, 0);
MAP(pcpu_hash, BPF_MAP_TYPE_PERCPU_HASH, __be16, __u64, 8, 0);
MAP(ports, BPF_MAP_TYPE_DEVMAP, __u32, __u32, 4, 0);

SEC("xdp")
int zoo(struct xdp_md *ctx)
{
	__u32 k = 0;
	__be16 p = 0;
	struct lpm_v4 l4 = {};
	struct lpm_v6 l6 = {};
	struct flow f = {};
	struct in6_addr_key a6 = {};

	if (bpf_map_lookup_elem(&hash_v4, &k) || bpf_map_lookup_elem(&hash_v6, &a6) ||
	    bpf_map_lookup_elem(&lru, &k) || bpf_map_lookup_elem(&big, &k) ||
	    bpf_map_lookup_elem(&lpm4, &l4) ||
	    bpf_map_lookup_elem(&lpm6, &l6) || bpf_map_lookup_elem(&flows, &f) ||
	    bpf_map_lookup_elem(&limits, &k) || bpf_map_lookup_elem(&pcpu_array, &k) ||
	    bpf_map_lookup_elem(&pcpu_hash, &p))
		return XDP_PASS;
	return bpf_redirect_map(&ports, 0, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
