/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed af_xdp (XDP, chained): steer matching traffic into AF_XDP
 * sockets, one socket per RX queue, and let everything else through.
 *
 * A packet matches when its destination port is on udp_ports (UDP) or
 * tcp_ports (TCP), IPv4 or IPv6, not a later fragment, and it arrived on a
 * queue of queue_mask.  A match is redirected to the socket at key
 * ctx->rx_queue_index of the XSKMAP `xsks`; with no socket there the packet
 * falls back to the kernel stack (bpf_redirect_map's XDP_PASS default) and
 * is counted as a fallback.  Everything else passes down the chain.
 *
 * Config (const volatile):
 *   udp_ports, tcp_ports   destination ports steered, at most 16 each
 *                          (wirespeed/ports.h); empty: none of that protocol
 *   queue_mask             bit q set: steer on RX queue q (queues 0-63);
 *                          0: every queue
 * Maps:
 *   xsks            XSKMAP, RX queue -> AF_XDP socket; the application
 *                   inserts its sockets here (pinned, see roles/af_xdp)
 *   xsk_queue_stats per-CPU, per RX queue: packets redirected and packets
 *                   that fell back (no socket on the queue)
 *   ws_stats, ws_reasons (wirespeed/stats.h): redirect counts steered
 *                   packets, pass counts the rest (fallbacks included)
 */
#include "wirespeed/chain.h"
#include "wirespeed/parsing.h"
#include "wirespeed/ports.h"
#include "wirespeed/stats.h"

#define XSK_QUEUES	64	/* RX queues a socket can be steered to */

WS_PORT_LIST(udp_ports);
WS_PORT_LIST(tcp_ports);
const volatile __u64 queue_mask = 0;

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XSK_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct xsk_queue_counts {
	__u64 redirected;
	__u64 fallback;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XSK_QUEUES);
	__type(key, __u32);
	__type(value, struct xsk_queue_counts);
} xsk_queue_stats SEC(".maps");

static __always_inline int xsk_matches(struct ws_packet *pkt)
{
	if (!pkt->l4_present)
		return 0;
	if (pkt->l4_proto == IPPROTO_UDP)
		return ws_port_listed(udp_ports, pkt->dport);
	if (pkt->l4_proto == IPPROTO_TCP)
		return ws_port_listed(tcp_ports, pkt->dport);
	return 0;
}

SEC("xdp")
int af_xdp(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ws_packet pkt = {};
	__u32 queue = ctx->rx_queue_index;
	struct xsk_queue_counts *counts;
	int action;

	if (queue >= XSK_QUEUES)
		return ws_pass(ctx);
	if (queue_mask && !(queue_mask & (1ULL << queue)))
		return ws_pass(ctx);
	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK || !xsk_matches(&pkt))
		return ws_pass(ctx);

	counts = bpf_map_lookup_elem(&xsk_queue_stats, &queue);
	action = bpf_redirect_map(&xsks, queue, XDP_PASS);
	if (action == XDP_REDIRECT) {
		if (counts)
			counts->redirected++;	/* per-CPU: no atomics */
		return ws_record(ctx, XDP_REDIRECT);
	}
	if (counts)
		counts->fallback++;
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
