/* SPDX-License-Identifier: GPL-2.0 */
/* Compiles, but reads the packet without a bounds check: the verifier refuses it. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int unchecked_read(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	return eth->h_proto == 0 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
