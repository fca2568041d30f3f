/* SPDX-License-Identifier: GPL-2.0 */
/* Maps sized like a threat feed, for bench/map_sync.py. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct lpm_v4 {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, __u32);
	__type(value, __u64);
} feed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__type(key, struct lpm_v4);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} nets SEC(".maps");

SEC("xdp")
int bench_maps(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct lpm_v4 l = {};

	if (bpf_map_lookup_elem(&feed, &k) || bpf_map_lookup_elem(&nets, &l))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
