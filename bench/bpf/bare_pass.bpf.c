/* SPDX-License-Identifier: GPL-2.0 */
/* XDP_PASS: lets a veth take redirected frames natively and hand them to the stack
 * (nftables and iptables then see them). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int bare_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
