/* SPDX-License-Identifier: GPL-2.0 */
/* The worst change an operator can push: every frame on the interface is dropped, SSH included. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int drop_all(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
