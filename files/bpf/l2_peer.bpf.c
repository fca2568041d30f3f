/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed l2_peer (XDP, chained): passes every frame, counted.
 *
 * A veth device delivers frames redirected into it by XDP (native mode)
 * only when the other end of the pair runs an XDP program.  The
 * l2_forwarder role attaches this one to the far end of each veth port,
 * possibly inside another network namespace; its pass count is the frames
 * that reached that end.
 *
 * Maps: ws_stats, ws_reasons (wirespeed/stats.h)
 */
#include "wirespeed/chain.h"
#include "wirespeed/stats.h"

SEC("xdp")
int l2_peer(struct xdp_md *ctx)
{
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
