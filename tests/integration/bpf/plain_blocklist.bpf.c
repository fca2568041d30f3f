/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A plain XDP program as a third party would write it: it knows nothing of
 * wirespeed (no chain header), drops IPv4 packets whose source address is a
 * key of `blocklist` and counts the drops in the key's value.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef BLOCKLIST_SIZE
#define BLOCKLIST_SIZE 1024
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BLOCKLIST_SIZE);
	__type(key, __u32);	/* IPv4 source, network order */
	__type(value, __u64);	/* packets dropped */
} blocklist SEC(".maps");

SEC("xdp")
int xdp_blocklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u64 *hits;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	hits = bpf_map_lookup_elem(&blocklist, &ip->saddr);
	if (!hits)
		return XDP_PASS;
	__sync_fetch_and_add(hits, 1);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
