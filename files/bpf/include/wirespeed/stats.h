/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Per-CPU packet and byte counters per action and per drop reason, for XDP
 * and TC programs alike.  Every verdict of a program leaves through one of
 * the exits below, so the counters always add up:
 *
 *   XDP                       TC (sk_buff)
 *   ws_pass(ctx)              ws_pass_skb(skb)       let it through
 *   ws_drop(ctx, reason)      ws_drop_skb(skb, reason)
 *   ws_record(ctx, action)    ws_record_skb(skb, verdict)   any other verdict
 *
 * ws_pass() counts the pass and hands the packet to the next program of the
 * XDP chain: it exists when wirespeed/chain.h is included before this
 * header.  ws_pass_skb() returns TC_ACT_UNSPEC, so later filters still run.
 *
 * datapath_info reads and sums the maps ws_stats and ws_reasons of every
 * pinned program.  ws_stats is indexed by XDP action (aborted 0, drop 1,
 * pass 2, tx 3, redirect 4); a TC verdict is counted on the same index
 * (ws_tc_action()), so both hooks read the same way.
 */
#ifndef WIRESPEED_STATS_H
#define WIRESPEED_STATS_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "wirespeed/reasons.h"

struct ws_action_stats {
	__u64 packets;
	__u64 bytes;
};

/* Per-CPU packets and bytes per XDP action; read as ws_stats. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDP_REDIRECT + 1);
	__type(key, __u32);
	__type(value, struct ws_action_stats);
} ws_stats SEC(".maps");

/* Per-CPU packets and bytes per drop reason (wirespeed/reasons.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WS_REASON_COUNT);
	__type(key, __u32);
	__type(value, struct ws_action_stats);
} ws_reasons SEC(".maps");

static __always_inline void ws_count(void *map, __u32 key, __u64 bytes)
{
	struct ws_action_stats *st = bpf_map_lookup_elem(map, &key);

	if (st) {
		/* per-CPU value: no other CPU writes it, no atomics needed */
		st->packets++;
		st->bytes += bytes;
	}
}

/* Add one to entry `key` of a program's own per-CPU array of u64 counters. */
static __always_inline void ws_bump(void *map, __u32 key)
{
	__u64 *n = bpf_map_lookup_elem(map, &key);

	if (n)
		*n += 1;	/* per-CPU: no other CPU writes it */
}

/* ---- XDP ---------------------------------------------------------------- */

/*
 * The whole packet's length: with multi-buffer packets (xdp.frags) data_end
 * ends the first buffer only, bpf_xdp_get_buff_len() counts the fragments.
 */
static __always_inline __u64 ws_xdp_len(struct xdp_md *ctx)
{
	return bpf_xdp_get_buff_len(ctx);
}

/* Count the packet under `action` and return it. */
static __always_inline int ws_record(struct xdp_md *ctx, __u32 action)
{
	ws_count(&ws_stats, action, ws_xdp_len(ctx));
	return action;
}

/* Drop the packet for `reason`: counted once per action, once per reason. */
static __always_inline int ws_drop(struct xdp_md *ctx, __u32 reason)
{
	ws_count(&ws_reasons, reason, ws_xdp_len(ctx));
	return ws_record(ctx, XDP_DROP);
}

#ifdef WIRESPEED_CHAIN_H
/*
 * The packet passes this program: counted as pass, then the next program
 * of the chain runs (or, at the end of the chain, the packet passes).
 */
static __always_inline int ws_pass(struct xdp_md *ctx)
{
	ws_record(ctx, XDP_PASS);
	return ws_chain_next(ctx);
}
#endif

/* ---- TC ----------------------------------------------------------------- */

/*
 * The ws_stats index of a TC verdict: shot (and stolen: the packet goes no
 * further) counts as drop, redirect as redirect, and the verdicts that let
 * the packet on (ok, unspec: the next filter decides, pipe, ...) as pass.
 * With a constant verdict this folds to a constant.
 */
static __always_inline __u32 ws_tc_action(int verdict)
{
	switch (verdict) {
	case TC_ACT_SHOT:
	case TC_ACT_STOLEN:
		return XDP_DROP;
	case TC_ACT_REDIRECT:
		return XDP_REDIRECT;
	default:
		return XDP_PASS;
	}
}

/* Count the packet under the action of `verdict` and return the verdict. */
static __always_inline int ws_record_skb(struct __sk_buff *skb, int verdict)
{
	ws_count(&ws_stats, ws_tc_action(verdict), skb->len);
	return verdict;
}

/* Drop the packet (TC_ACT_SHOT) for `reason`. */
static __always_inline int ws_drop_skb(struct __sk_buff *skb, __u32 reason)
{
	ws_count(&ws_reasons, reason, skb->len);
	return ws_record_skb(skb, TC_ACT_SHOT);
}

/* The packet passes: counted, and the next filter runs (TC_ACT_UNSPEC). */
static __always_inline int ws_pass_skb(struct __sk_buff *skb)
{
	return ws_record_skb(skb, TC_ACT_UNSPEC);
}

#endif /* WIRESPEED_STATS_H */
