/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Bounds-checked header parsing shared by every wirespeed program.
 *
 * A struct ws_cursor walks the packet; each ws_parse_*() checks that its
 * whole header lies before data_end, advances the cursor and returns the
 * next protocol (or -1 when the packet is too short or malformed).
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

struct ws_cursor {
	void *pos;
	void *end;
};

struct ws_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

static __always_inline int ws_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) ||
	       h_proto == bpf_htons(ETH_P_8021AD);
}

/* Ethernet plus up to two VLAN tags; returns the inner EtherType (network order). */
static __always_inline int ws_parse_eth(struct ws_cursor *c, struct ethhdr **eth)
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
static __always_inline int ws_parse_ipv4(struct ws_cursor *c, struct iphdr **iph)
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
static __always_inline int ws_parse_ipv6(struct ws_cursor *c, struct ipv6hdr **ip6h)
{
	struct ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > c->end)
		return -1;
	c->pos = ip6 + 1;
	*ip6h = ip6;
	return ip6->nexthdr;
}

static __always_inline int ws_parse_udp(struct ws_cursor *c, struct udphdr **udph)
{
	struct udphdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*udph = h;
	return 0;
}

static __always_inline int ws_parse_tcp(struct ws_cursor *c, struct tcphdr **tcph)
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

#endif /* WIRESPEED_PARSING_H */
