/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed conn_limiter (TC ingress): a limit of new connections per
 * source, for TCP and UDP, with a burst; a new connection over the limit is
 * dropped (reason conn_limit). Packets of connections already let through
 * are never counted or dropped.
 *
 * New connection: for TCP a SYN without ACK; for UDP the first packet of a
 * flow {source, destination, ports} not seen for udp_idle_ns, remembered in
 * an LRU hash (the busiest 65536 flows). The state is our own, not the
 * kernel's conntrack (bpf_skb_ct_lookup): conntrack only knows flows on
 * hosts where netfilter tracks them, its kfuncs tie the program to the
 * nf_conntrack module being loaded, and at TC ingress a packet has not been
 * through conntrack yet, so a first packet would look new either way.
 *
 * The limit is a token bucket per source (wirespeed/bucket.h): every new
 * connection costs interval_ns (1 s / the rate); the bucket holds burst + 1
 * connections, so in any second a source gets at most rate + burst + 1 and
 * over time the rate. Sources on the allow list (allow_v4/6, the management
 * guard adds the controller) are never limited.
 *
 * Config (const volatile): interval_ns (1e9 / new connections per second),
 *   burst (0), udp_idle_ns (30 s), limit_tcp 1, limit_udp 1, ports [] (at
 *   most 16, wirespeed/ports.h; empty: every destination port).
 * Maps:
 *   sources     LRU hash, source (IPv4 as ::ffff:a.b.c.d) -> bucket
 *   udp_flows   LRU hash, flow -> last seen (ns, ws_now())
 *   allow_v4/6  LPM tries of sources never limited (wirespeed/allow.h)
 *   ws_clock    the test clock (wirespeed/clock.h)
 *   ws_stats, ws_reasons (wirespeed/stats.h): pass, drop, conn_limit
 */
#include <linux/pkt_cls.h>
#include "wirespeed/allow.h"
#include "wirespeed/bucket.h"
#include "wirespeed/clock.h"
#include "wirespeed/parsing.h"
#include "wirespeed/ports.h"
#include "wirespeed/stats.h"

#ifndef CL_ENTRIES
#define CL_ENTRIES 65536
#endif

const volatile __u64 interval_ns = 100000000;
const volatile __u32 burst = 0;
const volatile __u64 udp_idle_ns = 30000000000ULL;
const volatile _Bool limit_tcp = 1;
const volatile _Bool limit_udp = 1;
WS_PORT_LIST(ports);

struct cl_flow {
	struct ws_src saddr;
	struct ws_src daddr;
	__be16 sport;
	__be16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CL_ENTRIES);
	__type(key, struct ws_src);
	__type(value, __u64);
} sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CL_ENTRIES);
	__type(key, struct cl_flow);
	__type(value, __u64);
} udp_flows SEC(".maps");

/* Whether this source may open one more connection now (charged if so). */
static __always_inline int admitted(struct ws_packet *pkt, __u64 now)
{
	struct ws_src src;
	__u64 *tat;

	if (ws_source_allowed(pkt))
		return 1;
	ws_addr_key(&src, pkt, 0);
	tat = ws_bucket_of(&sources, &src);
	if (!tat)
		return 1;
	return ws_bucket_take(tat, now, interval_ns,
			      (burst + 1ULL) * interval_ns);
}

SEC("tc")
int conn_limiter(struct __sk_buff *skb)
{
	struct ws_cursor c = ws_cursor_skb(skb);
	struct ws_packet pkt = {};
	struct cl_flow flow = {};
	__u64 now, *seen;

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK || !pkt.l4_present)
		return ws_pass_skb(skb);
	if (ports[0] && !ws_port_listed(ports, pkt.dport))
		return ws_pass_skb(skb);
	if (pkt.l4_proto == IPPROTO_TCP && limit_tcp) {
		/* SYN without ACK: a connection being opened */
		if ((pkt.tcp_flags & 0x12) != 0x02)
			return ws_pass_skb(skb);
		if (admitted(&pkt, ws_now()))
			return ws_pass_skb(skb);
		return ws_drop_skb(skb, WS_REASON_CONN_LIMIT);
	}
	if (pkt.l4_proto != IPPROTO_UDP || !limit_udp)
		return ws_pass_skb(skb);
	now = ws_now();
	ws_addr_key(&flow.saddr, &pkt, 0);
	ws_addr_key(&flow.daddr, &pkt, 1);
	flow.sport = pkt.sport;
	flow.dport = pkt.dport;
	seen = bpf_map_lookup_elem(&udp_flows, &flow);
	if (seen && now - *seen < udp_idle_ns) {
		*seen = now;	/* any CPU's recent time will do */
		return ws_pass_skb(skb);
	}
	if (!admitted(&pkt, now))
		return ws_drop_skb(skb, WS_REASON_CONN_LIMIT);
	if (seen)
		*seen = now;
	else
		bpf_map_update_elem(&udp_flows, &flow, &now, BPF_ANY);
	return ws_pass_skb(skb);
}

char _license[] SEC("license") = "GPL";
