/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A broken chained program for health checks: UDP to `abort_port` leaves
 * with XDP_ABORTED (counted in ws_stats like any verdict); the rest goes on.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <wirespeed/chain.h>
#include <wirespeed/parsing.h>
#include <wirespeed/reasons.h>
#include <wirespeed/stats.h>

const volatile __u16 abort_port = 0;

SEC("xdp")
int abort_port_prog(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ws_packet pkt = {};

	if (ws_parse_packet(&c, &pkt) == WS_PKT_OK && pkt.l4_present &&
	    pkt.l4_proto == IPPROTO_UDP && abort_port &&
	    pkt.dport == bpf_htons(abort_port))
		return ws_record(ctx, XDP_ABORTED);
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
