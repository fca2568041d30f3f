/* SPDX-License-Identifier: GPL-2.0 */
/* XDP_TX, nothing else: the floor the load balancer's forwarding is measured against. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int bare_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
