/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed mirror (TC, ingress or egress): send a copy of matching packets
 * to a target interface with bpf_clone_redirect, optionally 1 in N; the
 * original always continues unchanged (TC_ACT_UNSPEC: later filters run).
 * Cloning needs an sk_buff, which is why this lives at TC and not at XDP.
 *
 * A packet matches when all the enabled conditions hold:
 *   match_proto  0 any, else IPPROTO_* (6 TCP, 17 UDP, ...)
 *   ports        its source or destination port is on the list (empty: any)
 *   match_nets   1: its source or destination address is inside nets_v4/v6
 * Config (const volatile): match_proto 0, ports [] (at most 16,
 *   wirespeed/ports.h), match_nets 0, sample_n 1 (mirror 1 in N matching
 *   packets; 0 or 1: all of them).
 * Maps:
 *   target     array[1], value: ifindex of the interface that gets the copies
 *              (write it with xdp_map_entry, value_type ifindex, by name)
 *   nets_v4/6  LPM tries, value u64 matches
 *   mirror_stats  per-CPU array: [0] matched, [1] mirrored, [2] clone failed
 *   ws_stats   per-CPU packets/bytes per action (wirespeed/stats.h): every
 *              packet counts as pass, the verdict it leaves with; a copy is
 *              not a verdict, mirror_stats counts those
 *   ws_reasons (wirespeed/stats.h): the mirror drops nothing, it stays zero
 */
#include <linux/pkt_cls.h>
#include "wirespeed/lpm.h"
#include "wirespeed/parsing.h"
#include "wirespeed/ports.h"
#include "wirespeed/stats.h"

const volatile __u8 match_proto = 0;
WS_PORT_LIST(ports);
const volatile _Bool match_nets = 0;
const volatile __u32 sample_n = 1;

#define MIRROR_MATCHED	0
#define MIRROR_SENT	1
#define MIRROR_FAILED	2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

WS_LPM_MAP(nets_v4, struct ws_lpm_v4, 1024);
WS_LPM_MAP(nets_v6, struct ws_lpm_v6, 1024);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} mirror_stats SEC(".maps");

static __always_inline int port_match(struct ws_packet *pkt)
{
	if (!pkt->l4_present || !pkt->sport)
		return 0;
	return ws_port_listed(ports, pkt->sport) ||
	       ws_port_listed(ports, pkt->dport);
}

static __always_inline int net_match(struct ws_packet *pkt)
{
	return ws_lpm_find(&nets_v4, &nets_v6, pkt->family, &pkt->saddr) ||
	       ws_lpm_find(&nets_v4, &nets_v6, pkt->family, &pkt->daddr);
}

SEC("tc")
int mirror(struct __sk_buff *skb)
{
	struct ws_cursor c = ws_cursor_skb(skb);
	struct ws_packet pkt = {};
	__u32 zero = 0, *ifindex;

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK)
		return ws_pass_skb(skb);
	if (match_proto && pkt.l4_proto != match_proto)
		return ws_pass_skb(skb);
	if (ports[0] && !port_match(&pkt))
		return ws_pass_skb(skb);
	if (match_nets && !net_match(&pkt))
		return ws_pass_skb(skb);
	ws_bump(&mirror_stats, MIRROR_MATCHED);
	if (sample_n > 1 && bpf_get_prandom_u32() % sample_n)
		return ws_pass_skb(skb);
	ifindex = bpf_map_lookup_elem(&target, &zero);
	if (!ifindex || !*ifindex)
		return ws_pass_skb(skb);
	/* flags 0: to the target's egress */
	if (bpf_clone_redirect(skb, *ifindex, 0) == 0)
		ws_bump(&mirror_stats, MIRROR_SENT);
	else
		ws_bump(&mirror_stats, MIRROR_FAILED);
	return ws_pass_skb(skb);
}

char _license[] SEC("license") = "GPL";
