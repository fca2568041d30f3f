/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed ssh_limiter (XDP, chained): a per-source limit of new TCP
 * connections, then a ban. Built as a general SYN limiter: the ssh_limiter
 * role gives it port 22; a syn_flood use is the same program on other ports
 * (or all_ports) with other limits.
 *
 * For a TCP SYN without ACK to a protected port, from a source not on the
 * allow list: the source's count in the current window goes up; past
 * max_new the SYN drops ("syn_limit") and, when ban_s > 0, the source is
 * banned. While banned, every packet from it to a protected port drops
 * ("banned"). Everything else goes to the next program.
 *
 * Config (const volatile):
 *   ports      -      TCP ports protected, at most 16 (wirespeed/ports.h)
 *   max_new    5      new connections allowed per source per window
 *   window_ms  60000  the window
 *   ban_s      600    ban after passing the limit; 0: no ban, only the
 *                     excess drops
 *   all_ports  0      1: every TCP port is protected (syn_flood); ports is
 *                     then unused
 * Maps:
 *   allow_v4/6  LPM tries of sources never limited, value u64 hits
 *               (wirespeed/lpm.h)
 *   ws_rl_state LRU hash of per-source state; ws_clock the test clock
 *               (wirespeed/ratelimit.h)
 *   ws_stats, ws_reasons as in wirespeed/stats.h
 */
#include "wirespeed/chain.h"
#include "wirespeed/allow.h"
#include "wirespeed/parsing.h"
#include "wirespeed/ports.h"
#include "wirespeed/ratelimit.h"
#include "wirespeed/stats.h"

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

WS_PORT_LIST(ports);
const volatile __u32 max_new = 5;
const volatile __u32 window_ms = 60000;
const volatile __u32 ban_s = 600;
const volatile _Bool all_ports = 0;

SEC("xdp.frags")
int ssh_limiter(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ws_packet pkt = {};
	struct ws_src src;
	int verdict;

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK ||
	    pkt.l4_proto != IPPROTO_TCP || !pkt.l4_present)
		goto next;
	if (!all_ports && !ws_port_listed(ports, pkt.dport))
		goto next;
	if (ws_source_allowed(&pkt))
		goto next;
	ws_src_from_packet(&src, &pkt);
	if ((pkt.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN) {
		if (ws_rl_banned(&src))
			return ws_drop(ctx, WS_REASON_BANNED);
		goto next;
	}
	verdict = ws_rl_event(&src, max_new, (__u64)window_ms * 1000000ULL,
			      (__u64)ban_s * 1000000000ULL);
	if (verdict == WS_RL_BANNED)
		return ws_drop(ctx, WS_REASON_BANNED);
	if (verdict == WS_RL_LIMITED)
		return ws_drop(ctx, WS_REASON_SYN_LIMIT);
next:
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
