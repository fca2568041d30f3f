/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Per-CPU packet and byte counters per XDP action.  Every verdict of a
 * program leaves through ws_record(), so the counters always add up.
 * datapath_info reads and sums the map named ws_stats.
 */
#ifndef WIRESPEED_STATS_H
#define WIRESPEED_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct ws_action_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDP_REDIRECT + 1);
	__type(key, __u32);
	__type(value, struct ws_action_stats);
} ws_stats SEC(".maps");

static __always_inline int ws_record(struct xdp_md *ctx, __u32 action)
{
	struct ws_action_stats *st = bpf_map_lookup_elem(&ws_stats, &action);

	if (st) {
		/* per-CPU value: no other CPU writes it, no atomics needed */
		st->packets++;
		st->bytes += ctx->data_end - ctx->data;
	}
	return action;
}

#include "wirespeed/reasons.h"

/* Per-CPU packets and bytes per drop reason (wirespeed/reasons.h); read as ws_reasons. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WS_REASON_COUNT);
	__type(key, __u32);
	__type(value, struct ws_action_stats);
} ws_reasons SEC(".maps");

/* Drop the packet for `reason`: counted once per action and once per reason. */
static __always_inline int ws_drop(struct xdp_md *ctx, __u32 reason)
{
	struct ws_action_stats *st = bpf_map_lookup_elem(&ws_reasons, &reason);

	if (st) {
		st->packets++;
		st->bytes += ctx->data_end - ctx->data;
	}
	return ws_record(ctx, XDP_DROP);
}

#endif /* WIRESPEED_STATS_H */
