/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The program wirespeed attaches to an interface: it starts the chain at
 * the head link.  With an empty chain every packet passes.
 *
 * Two flavours of one program; the loader loads one of them.  A tail call
 * only reaches programs loaded the same way as the root (the kernel keeps
 * the program array's owner), so the flavour is the whole chain's:
 *   wirespeed_root   single-buffer packets (any MTU a page holds)
 *   wirespeed_frags  multi-buffer packets (BPF_F_XDP_HAS_FRAGS): jumbo
 *                    MTUs in native mode; every chained program must be
 *                    frags-aware too
 * The kernel name tells the flavour of an attached chain.
 */
#include "wirespeed/chain.h"

SEC("xdp")
int wirespeed_root(struct xdp_md *ctx)
{
	return ws_chain_next(ctx);
}

SEC("xdp.frags")
int wirespeed_frags(struct xdp_md *ctx)
{
	return ws_chain_next(ctx);
}

char _license[] SEC("license") = "GPL";
