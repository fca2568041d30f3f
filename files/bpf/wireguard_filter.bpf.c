/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed wireguard_filter (XDP, chained): on the WireGuard UDP port(s),
 * drop what cannot be WireGuard and limit handshake initiations per source.
 *
 * A datagram to a protected port must be one of (type byte, then three zero
 * reserved bytes, UDP payload length):
 *   1 handshake initiation  148 bytes   (counted against the source's limit)
 *   2 handshake response     92 bytes
 *   3 cookie reply           64 bytes
 *   4 transport data        >= 32 bytes and a multiple of 16
 * anything else drops ("wg_invalid"); an initiation past handshake_limit in
 * the window drops ("wg_handshake_limit"); transport data always passes.
 * IPv4 and IPv6. Sources on the allow list skip the handshake limit only.
 *
 * Config (const volatile):
 *   ports            -     UDP ports WireGuard listens on, at most 16
 *                          (wirespeed/ports.h); empty: nothing is checked
 *   handshake_limit  10    initiations per source per window
 *   window_ms        1000  the window
 *   ban_s            0     ban a source that passes the limit (its
 *                          initiations drop)
 * Maps:
 *   allow_v4/6   LPM tries of sources without a handshake limit, value u64
 *                hits (wirespeed/lpm.h)
 *   ws_rl_state, ws_clock (wirespeed/ratelimit.h);
 *   ws_stats, ws_reasons (wirespeed/stats.h)
 */
#include "wirespeed/chain.h"
#include "wirespeed/allow.h"
#include "wirespeed/parsing.h"
#include "wirespeed/ports.h"
#include "wirespeed/ratelimit.h"
#include "wirespeed/stats.h"

#define WG_INITIATION	1
#define WG_RESPONSE	2
#define WG_COOKIE	3
#define WG_TRANSPORT	4

WS_PORT_LIST(ports);
const volatile __u32 handshake_limit = 10;
const volatile __u32 window_ms = 1000;
const volatile __u32 ban_s = 0;

/*
 * Whether a UDP payload of `len` bytes starting with `hdr` can be WireGuard:
 * its type, or 0.
 */
static __always_inline int wg_type(__u8 *hdr, __u32 len)
{
	if (hdr[1] | hdr[2] | hdr[3])
		return 0;
	switch (hdr[0]) {
	case WG_INITIATION:
		return len == 148 ? WG_INITIATION : 0;
	case WG_RESPONSE:
		return len == 92 ? WG_RESPONSE : 0;
	case WG_COOKIE:
		return len == 64 ? WG_COOKIE : 0;
	case WG_TRANSPORT:
		return len >= 32 && (len % 16) == 0 ? WG_TRANSPORT : 0;
	}
	return 0;
}

SEC("xdp.frags")
int wireguard_filter(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ws_packet pkt = {};
	struct udphdr *udp;
	struct ws_src src;
	__u8 *hdr;
	__u32 len;
	int type, verdict;

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK ||
	    pkt.l4_proto != IPPROTO_UDP || !pkt.l4_present)
		goto next;
	if (!ws_port_listed(ports, pkt.dport))
		goto next;
	/* WireGuard never fragments at this size: a fragment is not it */
	if (pkt.fragment)
		return ws_drop(ctx, WS_REASON_WG_INVALID);
	udp = pkt.l4;
	hdr = (void *)(udp + 1);
	if ((void *)(udp + 1) > c.end || (void *)(hdr + 4) > c.end)
		return ws_drop(ctx, WS_REASON_WG_INVALID);
	len = bpf_ntohs(udp->len);
	/* the datagram may run on into fragments (xdp.frags): compare with
	 * the whole packet's length, not with the first buffer's end */
	if (len < sizeof(*udp) + 4 ||
	    (void *)udp - (void *)(long)ctx->data + len > ws_xdp_len(ctx))
		return ws_drop(ctx, WS_REASON_WG_INVALID);
	type = wg_type(hdr, len - sizeof(*udp));
	if (!type)
		return ws_drop(ctx, WS_REASON_WG_INVALID);
	if (type != WG_INITIATION)
		goto next;

	if (ws_source_allowed(&pkt))
		goto next;
	ws_src_from_packet(&src, &pkt);
	verdict = ws_rl_event(&src, handshake_limit,
			      (__u64)window_ms * 1000000ULL,
			      (__u64)ban_s * 1000000000ULL);
	if (verdict != WS_RL_OK)
		return ws_drop(ctx, WS_REASON_WG_HANDSHAKE_LIMIT);
next:
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
