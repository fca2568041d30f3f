/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TC: drop UDP to one port, hand everything else to the next filter
 * (TC_ACT_UNSPEC).
 */
#include <linux/pkt_cls.h>
#include "wirespeed/parsing.h"

#ifndef DEFAULT_PORT
#define DEFAULT_PORT 0
#endif

const volatile __u16 drop_port = DEFAULT_PORT;

SEC("tc")
int tc_drop_port(struct __sk_buff *skb)
{
	struct ws_cursor c = ws_cursor_skb(skb);
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;

	if (ws_parse_eth(&c, &eth) != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	if (ws_parse_ipv4(&c, &ip) != IPPROTO_UDP || ws_parse_udp(&c, &udp) < 0)
		return TC_ACT_UNSPEC;
	if (drop_port && udp->dest == bpf_htons(drop_port))
		return TC_ACT_SHOT;
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
