/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The program wirespeed attaches to an interface: it starts the chain at
 * the head link.  With an empty chain every packet passes.
 */
#include "wirespeed/chain.h"

SEC("xdp")
int wirespeed_root(struct xdp_md *ctx)
{
	return ws_chain_next(ctx);
}

char _license[] SEC("license") = "GPL";
