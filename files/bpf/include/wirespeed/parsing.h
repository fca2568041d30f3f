/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Bounds-checked header parsing shared by every wirespeed program.
 *
 * A struct ws_cursor walks the packet; each ws_parse_*() checks that its
 * whole header lies before data_end, advances the cursor and returns the
 * next protocol (or -1 when the packet is too short or malformed).  A
 * program starts its cursor with ws_cursor_xdp(ctx) or ws_cursor_skb(skb).
 */
#ifndef WIRESPEED_PARSING_H
#define WIRESPEED_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define WS_MAX_VLAN_TAGS 2	/* 802.1Q, and 802.1ad outer tag (QinQ) */
#define WS_MAX_EXT_HDRS 6	/* IPv6 extension headers walked, at most */

struct ws_cursor {
	void *pos;
	void *end;
};

/* A cursor at the start of an XDP packet. */
static __always_inline struct ws_cursor ws_cursor_xdp(struct xdp_md *ctx)
{
	struct ws_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};

	return c;
}

/* A cursor at the start of an sk_buff's linear data (TC). */
static __always_inline struct ws_cursor ws_cursor_skb(struct __sk_buff *skb)
{
	struct ws_cursor c = {
		.pos = (void *)(long)skb->data,
		.end = (void *)(long)skb->data_end,
	};

	return c;
}

struct ws_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

static __always_inline int ws_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) ||
	       h_proto == bpf_htons(ETH_P_8021AD);
}

/*
 * Ethernet plus up to two VLAN tags; returns the inner EtherType (network
 * order).
 */
static __always_inline int ws_parse_eth(struct ws_cursor *c,
					struct ethhdr **eth)
{
	struct ethhdr *e = c->pos;
	struct ws_vlan_hdr *vlan;
	__u16 proto;
	int i;

	if ((void *)(e + 1) > c->end)
		return -1;
	c->pos = e + 1;
	*eth = e;
	proto = e->h_proto;
#pragma unroll
	for (i = 0; i < WS_MAX_VLAN_TAGS; i++) {
		if (!ws_is_vlan(proto))
			break;
		vlan = c->pos;
		if ((void *)(vlan + 1) > c->end)
			return -1;
		proto = vlan->encap_proto;
		c->pos = vlan + 1;
	}
	return proto;
}

/* IPv4 with its options; returns the L4 protocol, -1 when malformed. */
static __always_inline int ws_parse_ipv4(struct ws_cursor *c,
					 struct iphdr **iph)
{
	struct iphdr *ip = c->pos;
	int len;

	if ((void *)(ip + 1) > c->end)
		return -1;
	len = ip->ihl * 4;
	if (len < (int)sizeof(*ip))
		return -1;
	if (c->pos + len > c->end)
		return -1;
	c->pos += len;
	*iph = ip;
	return ip->protocol;
}

/* The fixed IPv6 header; returns its next header. */
static __always_inline int ws_parse_ipv6(struct ws_cursor *c,
					 struct ipv6hdr **ip6h)
{
	struct ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > c->end)
		return -1;
	c->pos = ip6 + 1;
	*ip6h = ip6;
	return ip6->nexthdr;
}

static __always_inline int ws_parse_udp(struct ws_cursor *c,
					struct udphdr **udph)
{
	struct udphdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*udph = h;
	return 0;
}

static __always_inline int ws_parse_tcp(struct ws_cursor *c,
					struct tcphdr **tcph)
{
	struct tcphdr *h = c->pos;
	int len;

	if ((void *)(h + 1) > c->end)
		return -1;
	len = h->doff * 4;
	if (len < (int)sizeof(*h) || c->pos + len > c->end)
		return -1;
	c->pos += len;
	*tcph = h;
	return 0;
}

/* ---- one call for the common case: every header a filter looks at ------ */

#define WS_PKT_OK		0
#define WS_PKT_NOT_IP		1	/* ARP, LLDP, ...: not ours to judge */
#define WS_PKT_MALFORMED	-1	/* truncated or invalid: "malformed" */

struct ws_packet {
	__u8 family;		/* 4 or 6 */
	__u8 l4_proto;		/* IPPROTO_* of the first non-extension hdr */
	__u8 fragment;		/* part of a fragmented datagram */
	__u8 l4_present;	/* the L4 header is here (no later fragment) */
	__u8 tcp_flags;		/* byte 13 of the TCP header */
	__u8 pad[3];
	__be16 sport;		/* 0 where the protocol has no ports */
	__be16 dport;
	__u32 l4_len;		/* bytes from the L4 header to the end */
	union {
		__be32 v4;
		__u8 v6[16];
	} saddr, daddr;
	void *l3;		/* the IPv4 or IPv6 header */
	void *l4;
};

static __always_inline int ws_ipv6_ext_walk(struct ws_cursor *c,
					    struct ws_packet *pkt, int nexthdr)
{
	int i;

#pragma unroll
	for (i = 0; i < WS_MAX_EXT_HDRS; i++) {
		__u8 *h = c->pos;
		int len;

		if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING &&
		    nexthdr != IPPROTO_DSTOPTS && nexthdr != IPPROTO_FRAGMENT &&
		    nexthdr != IPPROTO_AH)
			return nexthdr;
		if ((void *)(h + 8) > c->end)
			return -1;
		if (nexthdr == IPPROTO_FRAGMENT) {
			__be16 off = *(__be16 *)(h + 2);

			pkt->fragment = 1;
			/* offset != 0: no L4 header */
			if (off & bpf_htons(0xfff8))
				pkt->l4_present = 0;
			len = 8;
		} else if (nexthdr == IPPROTO_AH) {
			len = (h[1] + 2) * 4;
		} else {
			len = (h[1] + 1) * 8;
		}
		nexthdr = h[0];
		if (c->pos + len > c->end)
			return -1;
		c->pos += len;
	}
	/* more extension headers than we walk: treat as malformed */
	return -1;
}

/*
 * Fill pkt from Ethernet (VLAN, QinQ), IPv4 (options, fragments) or IPv6
 * (extension headers), and the TCP/UDP ports where they are present.
 */
static __always_inline int ws_parse_packet(struct ws_cursor *c,
					   struct ws_packet *pkt)
{
	struct ethhdr *eth;
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	int proto;

	pkt->l4_present = 1;
	proto = ws_parse_eth(c, &eth);
	if (proto < 0)
		return WS_PKT_MALFORMED;
	if (proto == bpf_htons(ETH_P_IP)) {
		pkt->family = 4;
		proto = ws_parse_ipv4(c, &ip);
		if (proto < 0)
			return WS_PKT_MALFORMED;
		pkt->l3 = ip;
		pkt->saddr.v4 = ip->saddr;
		pkt->daddr.v4 = ip->daddr;
		/* MF set or offset != 0 */
		if (ip->frag_off & bpf_htons(0x3fff)) {
			pkt->fragment = 1;
			if (ip->frag_off & bpf_htons(0x1fff))
				pkt->l4_present = 0;
		}
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		pkt->family = 6;
		proto = ws_parse_ipv6(c, &ip6);
		if (proto < 0)
			return WS_PKT_MALFORMED;
		pkt->l3 = ip6;
		__builtin_memcpy(pkt->saddr.v6, &ip6->saddr, 16);
		__builtin_memcpy(pkt->daddr.v6, &ip6->daddr, 16);
		proto = ws_ipv6_ext_walk(c, pkt, proto);
		if (proto < 0)
			return WS_PKT_MALFORMED;
	} else {
		return WS_PKT_NOT_IP;
	}
	pkt->l4_proto = proto;
	pkt->l4 = c->pos;
	pkt->l4_len = c->end - c->pos;
	if (!pkt->l4_present)
		return WS_PKT_OK;
	if (proto == IPPROTO_UDP) {
		struct udphdr *udp;

		if (ws_parse_udp(c, &udp) < 0)
			return WS_PKT_MALFORMED;
		pkt->sport = udp->source;
		pkt->dport = udp->dest;
	} else if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp;

		if (ws_parse_tcp(c, &tcp) < 0)
			return WS_PKT_MALFORMED;
		pkt->sport = tcp->source;
		pkt->dport = tcp->dest;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
	}
	return WS_PKT_OK;
}

/* ---- ICMP echo ---------------------------------------------------------- */

#define WS_ICMP_ECHO_REQUEST	8
#define WS_ICMPV6_ECHO_REQUEST	128

/*
 * Whether a parsed packet is an ICMP (IPv4) or ICMPv6 echo request: 1 with
 * its identifier (network order) in *id, 0 otherwise.  The echo header is
 * type, code, checksum, identifier, sequence: 8 bytes.
 */
static __always_inline int ws_icmp_echo_id(struct ws_packet *pkt, void *end,
					   __be16 *id)
{
	__u8 *h = pkt->l4;

	if (!pkt->l4_present || (void *)(h + 8) > end)
		return 0;
	if (!(pkt->family == 4 && pkt->l4_proto == IPPROTO_ICMP &&
	      h[0] == WS_ICMP_ECHO_REQUEST) &&
	    !(pkt->family == 6 && pkt->l4_proto == IPPROTO_ICMPV6 &&
	      h[0] == WS_ICMPV6_ECHO_REQUEST))
		return 0;
	*id = *(__be16 *)(h + 4);
	return 1;
}

/* ---- a packet's address as one 16-byte key (IPv4 as ::ffff:a.b.c.d) ---- */

/* An address as a map key, whichever the family (ratelimit.h, the TC limiters). */
struct ws_src {
	__u8 addr[16];
};

static __always_inline void ws_src_from_v4(struct ws_src *src, __be32 addr)
{
	__builtin_memset(src, 0, sizeof(*src));
	src->addr[10] = 0xff;
	src->addr[11] = 0xff;
	__builtin_memcpy(&src->addr[12], &addr, 4);
}

/* The packet's source (dst 0) or destination (dst 1) as a 16-byte key. */
static __always_inline void ws_addr_key(struct ws_src *key,
					struct ws_packet *pkt, int dst)
{
	if (pkt->family == 4)
		ws_src_from_v4(key, dst ? pkt->daddr.v4 : pkt->saddr.v4);
	else
		__builtin_memcpy(key->addr, dst ? pkt->daddr.v6 : pkt->saddr.v6,
				 16);
}

/* The packet's source as a key of ws_rl_state: IPv4 mapped into IPv6. */
static __always_inline void ws_src_from_packet(struct ws_src *src,
					       struct ws_packet *pkt)
{
	ws_addr_key(src, pkt, 0);
}

#endif /* WIRESPEED_PARSING_H */
