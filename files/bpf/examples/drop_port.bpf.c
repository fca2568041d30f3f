/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Drop TCP or UDP packets to one destination port, pass the rest on to the
 * next program of the chain.  Tuned at load time, no recompiling:
 *
 *   config:
 *     drop_port: 8080      # destination port; 0 drops nothing
 *     drop_proto: 17       # IPPROTO_UDP (17) or IPPROTO_TCP (6)
 *
 * ws_parse_packet() reads IPv4 and IPv6 (VLAN tags, IPv4 options, IPv6
 * extension headers); a fragment without the L4 header has no port and
 * passes, as do packets that are not IP or are malformed.  Drops count
 * under the reason "deny_port" (ws_reasons); every packet is counted in
 * ws_stats.
 */
#include "wirespeed/chain.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

const volatile __u16 drop_port = 0;
const volatile __u8 drop_proto = IPPROTO_UDP;

SEC("xdp.frags")
int drop_port_prog(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ws_packet pkt = {};

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK || !pkt.l4_present ||
	    pkt.l4_proto != drop_proto || !drop_port)
		return ws_pass(ctx);
	if (pkt.dport == bpf_htons(drop_port))
		return ws_drop(ctx, WS_REASON_DENY_PORT);
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
