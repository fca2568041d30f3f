/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The smallest useful XDP blocklist: one hash lookup of the IPv4 source, drop on a hit.
 * A reference for bench/veth_mpps.py: what any hash-based list costs, beside the firewall.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, __u32);
	__type(value, __u64);
} deny_v4 SEC(".maps");

SEC("xdp")
int blocklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u64 *hits;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	hits = bpf_map_lookup_elem(&deny_v4, &ip->saddr);
	if (!hits)
		return XDP_PASS;
	__sync_fetch_and_add(hits, 1);
	return XDP_DROP;
}
char _license[] SEC("license") = "GPL";
