/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Drop TCP or UDP packets to one destination port, pass the rest on to the
 * next program of the chain.  Tuned at load time, no recompiling:
 *
 *   config:
 *     drop_port: 8080      # destination port; 0 drops nothing
 *     drop_proto: 17       # IPPROTO_UDP (17) or IPPROTO_TCP (6)
 */
#include "wirespeed/chain.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

const volatile __u16 drop_port = 0;
const volatile __u8 drop_proto = IPPROTO_UDP;

SEC("xdp")
int drop_port_prog(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ethhdr *eth;
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	struct udphdr *udp;
	struct tcphdr *tcp;
	__u16 dport;
	int proto;

	proto = ws_parse_eth(&c, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = ws_parse_ipv4(&c, &ip);
		/* later fragments carry no L4 header */
		if (proto >= 0 && (ip->frag_off & bpf_htons(0x1fff)))
			goto next;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = ws_parse_ipv6(&c, &ip6);
	} else {
		goto next;
	}
	if (proto < 0 || proto != drop_proto || !drop_port)
		goto next;

	if (proto == IPPROTO_UDP) {
		if (ws_parse_udp(&c, &udp) < 0)
			goto next;
		dport = udp->dest;
	} else if (proto == IPPROTO_TCP) {
		if (ws_parse_tcp(&c, &tcp) < 0)
			goto next;
		dport = tcp->dest;
	} else {
		goto next;
	}
	if (dport == bpf_htons(drop_port))
		return ws_record(ctx, XDP_DROP);
next:
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
