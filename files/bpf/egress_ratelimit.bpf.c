/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed egress_ratelimit (TC egress): a token bucket per destination,
 * charged with the length of every frame sent; a packet over its budget is
 * dropped (reason rate_limited). Policing, not shaping: nothing is queued.
 *
 * The destination address is looked up in rules_v4 / rules_v6 (longest
 * prefix wins). A rule's budget is per destination address inside its
 * network (per 0, the default), or one budget shared by the whole rule
 * (per 1). A destination outside every rule gets the default rate when one
 * is set (default_rate != 0), else it is not touched. Packets that are not
 * IPv4/IPv6, or whose headers are truncated, pass uncounted by any bucket.
 *
 * Config (const volatile): default_rate (bit/s, 0: none), default_burst
 *   (bytes), default_per (0 address, 1 one budget for everything else).
 * Maps:
 *   rules_v4/6  LPM tries, CIDR -> {rate bit/s, burst bytes, per, id}; id is
 *               the rule's number (1..), the key of a shared budget
 *   buckets     LRU hash {id, address (IPv4 as ::ffff:a.b.c.d; zeros for a
 *               shared budget)} -> the bucket (wirespeed/bucket.h); the
 *               oldest idle destinations are evicted first
 *   ws_clock    the test clock (wirespeed/clock.h)
 *   ws_stats, ws_reasons (wirespeed/stats.h): pass, drop, rate_limited
 */
#include <linux/pkt_cls.h>
#include "wirespeed/bucket.h"
#include "wirespeed/clock.h"
#include "wirespeed/lpm.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

#ifndef ERL_BUCKETS
#define ERL_BUCKETS 65536	/* destinations tracked at once (LRU) */
#endif
#define ERL_NS_PER_BYTE_X_RATE 8000000000ULL	/* 8 bits x 1e9 ns */

const volatile __u64 default_rate = 0;
const volatile __u32 default_burst = 0;
const volatile __u32 default_per = 0;

struct erl_rule {
	__u64 rate;		/* bits per second */
	__u32 burst;		/* bytes */
	__u32 per;		/* 0: per destination address, 1: per rule */
	__u32 id;		/* rule number, 1.. (0: the default rate) */
	__u32 pad;
};

struct erl_key {
	__u32 id;
	struct ws_src addr;	/* zeros for a budget per rule */
};

WS_LPM_MAP_OF(rules_v4, struct ws_lpm_v4, struct erl_rule, 1024);
WS_LPM_MAP_OF(rules_v6, struct ws_lpm_v6, struct erl_rule, 1024);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ERL_BUCKETS);
	__type(key, struct erl_key);
	__type(value, __u64);
} buckets SEC(".maps");

static __always_inline struct erl_rule *find_rule(struct ws_packet *pkt)
{
	if (pkt->family == 4) {
		struct ws_lpm_v4 key = { .prefixlen = 32 };

		key.addr = pkt->daddr.v4;
		return bpf_map_lookup_elem(&rules_v4, &key);
	} else {
		struct ws_lpm_v6 key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, pkt->daddr.v6, 16);
		return bpf_map_lookup_elem(&rules_v6, &key);
	}
}

SEC("tc")
int egress_ratelimit(struct __sk_buff *skb)
{
	struct ws_cursor c = ws_cursor_skb(skb);
	struct ws_packet pkt = {};
	struct erl_key key = {};
	struct erl_rule *rule;
	__u64 rate, *tat;
	__u32 burst, per;

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK)
		return ws_pass_skb(skb);
	rule = find_rule(&pkt);
	if (rule) {
		rate = rule->rate;
		burst = rule->burst;
		per = rule->per;
		key.id = rule->id;
	} else {
		rate = default_rate;
		burst = default_burst;
		per = default_per;
	}
	if (!rate)
		return ws_pass_skb(skb);
	if (!per)
		ws_addr_key(&key.addr, &pkt, 1);
	tat = ws_bucket_of(&buckets, &key);
	if (!tat)
		return ws_pass_skb(skb);
	if (ws_bucket_take(tat, ws_now_fine(),
			   skb->len * ERL_NS_PER_BYTE_X_RATE / rate,
			   burst * ERL_NS_PER_BYTE_X_RATE / rate))
		return ws_pass_skb(skb);
	/*
	 * TC_ACT_STOLEN, not SHOT: the sending socket is told the packet
	 * left, as a policer on the path would have it. With SHOT, TCP keeps
	 * the packet and stops until a timer retries it (goodput collapses);
	 * told nothing, it sees a loss and backs off the way it does for any
	 * policer. Counted as a drop all the same (ws_tc_action()).
	 */
	ws_count(&ws_reasons, WS_REASON_RATE_LIMITED, skb->len);
	return ws_record_skb(skb, TC_ACT_STOLEN);
}

char _license[] SEC("license") = "GPL";
