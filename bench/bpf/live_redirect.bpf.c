/* SPDX-License-Identifier: GPL-2.0 */
/* The traffic generator: with BPF_PROG_TEST_RUN and BPF_F_TEST_XDP_LIVE_FRAMES, every
 * test frame is sent out of `out_ifindex` (a veth) as if it had been received and redirected. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 out_ifindex = 0;

SEC("xdp")
int live_redirect(struct xdp_md *ctx)
{
	return bpf_redirect(out_ifindex, 0);
}

char _license[] SEC("license") = "GPL";
