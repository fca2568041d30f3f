/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed dscp_marking (TC, egress or ingress): set the DSCP of TCP and UDP
 * packets by protocol and port, from a map, so one program serves every
 * rule and changing a rule changes no program.
 *
 * The rules are an LPM trie keyed by {proto, side, port}: side 0 matches the
 * destination port, side 1 the source port, and a port range is a few
 * prefixes of the port (the role splits it). The destination port is looked
 * up first, then the source port; no match leaves the packet as it is.
 *
 * What is rewritten: IPv4, the six DSCP bits of the TOS byte, with the
 * header checksum fixed incrementally (bpf_l3_csum_replace over the 16-bit
 * word that holds TOS); the ECN bits stay. IPv6, the six DSCP bits of the
 * traffic class; ECN bits and flow label stay, and there is no header
 * checksum. Neither field is in the TCP/UDP pseudo header, so L4 checksums
 * stay valid. 802.1Q/802.1ad tags, IPv4 options and IPv6 extension headers
 * are walked (wirespeed/parsing.h); later fragments (no ports) and packets
 * with truncated headers go on untouched. Every packet goes on to the next
 * filter (TC_ACT_UNSPEC): marking drops nothing.
 *
 * Config (const volatile): trust 0; 1 leaves packets that already carry a
 *   DSCP other than 0 as they are (the sender's marking is trusted).
 * Maps:
 *   rules        LPM trie {prefixlen, proto, side, port} -> DSCP (0..63)
 *   dscp_stats   per-CPU array: [0] rewritten, [1] matched and already right
 *                (or trusted)
 *   ws_stats, ws_reasons (wirespeed/stats.h): every packet counts as pass
 */
#include <stddef.h>
#include <linux/pkt_cls.h>
#include "wirespeed/lpm.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

const volatile _Bool trust = 0;

#define DSCP_REWRITTEN	0
#define DSCP_KEPT	1

struct dscp_key {
	__u32 prefixlen;	/* 16 + bits of the port that must match */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 side;		/* 0 destination port, 1 source port */
	__be16 port;
};

WS_LPM_MAP_OF(rules, struct dscp_key, __u32, 4096);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} dscp_stats SEC(".maps");

/* The DSCP for the packet's ports, or -1 when no rule matches. */
static __always_inline int wanted_dscp(struct ws_packet *pkt)
{
	struct dscp_key key = {
		.prefixlen = 32,
		.proto = pkt->l4_proto,
		.side = 0,
		.port = pkt->dport,
	};
	__u32 *dscp = bpf_map_lookup_elem(&rules, &key);

	if (!dscp) {
		key.side = 1;
		key.port = pkt->sport;
		dscp = bpf_map_lookup_elem(&rules, &key);
	}
	return dscp ? (*dscp & 0x3f) : -1;
}

SEC("tc")
int dscp_marking(struct __sk_buff *skb)
{
	struct ws_cursor c = ws_cursor_skb(skb);
	struct ws_packet pkt = {};
	void *data = c.pos;
	__u32 off;
	__be16 old_word, new_word;
	int dscp;

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK || !pkt.l4_present ||
	    (pkt.l4_proto != IPPROTO_TCP && pkt.l4_proto != IPPROTO_UDP))
		return ws_pass_skb(skb);
	dscp = wanted_dscp(&pkt);
	if (dscp < 0)
		return ws_pass_skb(skb);
	off = pkt.l3 - data;
	if (off > 64 || (void *)((__u8 *)pkt.l3 + 2) > c.end)
		return ws_pass_skb(skb);
	old_word = *(__be16 *)pkt.l3;
	if (pkt.family == 4) {
		/* version/IHL, then TOS: DSCP (6 bits) | ECN (2 bits) */
		__u16 host = bpf_ntohs(old_word);

		if (trust && (host & 0xfc))
			goto kept;
		new_word = bpf_htons((host & 0xff03) | (dscp << 2));
	} else {
		/* version (4), traffic class (8: DSCP 6, ECN 2), flow label */
		__u16 host = bpf_ntohs(old_word);

		if (trust && (host & 0x0fc0))
			goto kept;
		new_word = bpf_htons((host & 0xf03f) | (dscp << 6));
	}
	if (new_word == old_word)
		goto kept;
	if (pkt.family == 4 &&
	    bpf_l3_csum_replace(skb, off + offsetof(struct iphdr, check),
				old_word, new_word, sizeof(new_word)))
		return ws_pass_skb(skb);
	if (bpf_skb_store_bytes(skb, off, &new_word, sizeof(new_word), 0))
		return ws_pass_skb(skb);
	ws_bump(&dscp_stats, DSCP_REWRITTEN);
	return ws_pass_skb(skb);
kept:
	ws_bump(&dscp_stats, DSCP_KEPT);
	return ws_pass_skb(skb);
}

char _license[] SEC("license") = "GPL";
