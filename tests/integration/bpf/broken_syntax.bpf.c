/* SPDX-License-Identifier: GPL-2.0 */
/* Does not compile: the compile-error test expects clang's message. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int broken(struct xdp_md *ctx)
{
	return XDP_PASS	/* missing semicolon */
}

char _license[] SEC("license") = "GPL";
