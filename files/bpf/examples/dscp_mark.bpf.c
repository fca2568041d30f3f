/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TC egress: set the DSCP of matching IPv4 and IPv6 packets, keep their ECN
 * bits, fix the IPv4 header checksum (TOS is not in the UDP/TCP pseudo
 * header, so the L4 checksum stays valid), and let every packet go on to
 * the next filter (TC_ACT_UNSPEC), so filters of other tools still run.
 * Every packet counts as pass in ws_stats (wirespeed/stats.h).
 *
 *   config:
 *     match_proto: 17   # IPPROTO_UDP or IPPROTO_TCP
 *     match_port: 5060  # destination port; 0 matches every port
 *     dscp: 46          # 0..63 (46 = EF)
 */
#include <linux/pkt_cls.h>
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

const volatile __u8 match_proto = IPPROTO_UDP;
const volatile __u16 match_port = 0;
const volatile __u8 dscp = 46;

static __always_inline int port_matches(struct ws_cursor *c, int proto)
{
	struct udphdr *udp;
	struct tcphdr *tcp;

	if (proto != match_proto)
		return 0;
	if (!match_port)
		return 1;
	if (proto == IPPROTO_UDP)
		return ws_parse_udp(c, &udp) == 0 &&
		       udp->dest == bpf_htons(match_port);
	if (proto == IPPROTO_TCP)
		return ws_parse_tcp(c, &tcp) == 0 &&
		       tcp->dest == bpf_htons(match_port);
	return 0;
}

SEC("tc")
int dscp_mark(struct __sk_buff *skb)
{
	struct ws_cursor c = ws_cursor_skb(skb);
	void *data = c.pos;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	__u16 old_word, new_word;
	__u32 off;
	int proto;

	proto = ws_parse_eth(&c, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = ws_parse_ipv4(&c, &ip);
		if (proto < 0 || (ip->frag_off & bpf_htons(0x1fff)))
			return ws_pass_skb(skb);
		if (!port_matches(&c, proto))
			return ws_pass_skb(skb);
		if ((ip->tos >> 2) == dscp)
			return ws_pass_skb(skb);
		off = (void *)ip - data;
		/* version/IHL and TOS: one checksum word */
		old_word = *(__u16 *)ip;
		new_word = old_word;
		((__u8 *)&new_word)[1] = (dscp << 2) | (ip->tos & 0x3);
		bpf_l3_csum_replace(skb, off + offsetof(struct iphdr, check),
				    old_word, new_word, 2);
		bpf_skb_store_bytes(skb, off, &new_word, 2, 0);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = ws_parse_ipv6(&c, &ip6);
		if (proto < 0 || !port_matches(&c, proto))
			return ws_pass_skb(skb);
		off = (void *)ip6 - data;
		/* version, traffic class, top of the flow label */
		old_word = *(__u16 *)ip6;
		/*
		 * traffic class = bits 4..11 of the word in network order;
		 * keep its ECN bits
		 */
		new_word = bpf_htons((bpf_ntohs(old_word) & 0xf03f) |
				     ((__u16)dscp << 6));
		if (new_word != old_word)
			bpf_skb_store_bytes(skb, off, &new_word, 2, 0);
	}
	return ws_pass_skb(skb);
}

char _license[] SEC("license") = "GPL";
