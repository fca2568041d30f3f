/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A token bucket kept as one 64-bit word, safe on several CPUs at once
 * (egress_ratelimit: bytes per destination; conn_limiter: new connections
 * per source).
 *
 * The word is the bucket's "theoretical arrival time" (GCRA): the moment at
 * which everything let through so far has been paid for at the configured
 * rate. A bucket whose time lies in the past is full. A packet costing
 * `cost` ns (its bytes, or one connection, at the rate) passes when the
 * bucket is full or when the debt it leaves stays within `depth` ns (the
 * burst at the rate); the time then moves on by `cost`. A packet larger
 * than the whole bucket (a GSO super-packet) passes from a full bucket and
 * leaves a debt that later packets wait out, so the long-run rate holds.
 *
 * The update is a compare-and-swap, so two CPUs charging the same bucket
 * never lose each other's cost; after WS_BUCKET_TRIES lost races the packet
 * counts as over the limit (the others just spent the budget).
 */
#ifndef WIRESPEED_BUCKET_H
#define WIRESPEED_BUCKET_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define WS_BUCKET_TRIES 4

/* 1: the packet fits and was charged; 0: over the limit. */
static __always_inline int ws_bucket_take(__u64 *tat, __u64 now, __u64 cost,
					  __u64 depth)
{
	int i;

#pragma unroll
	for (i = 0; i < WS_BUCKET_TRIES; i++) {
		__u64 old = *(volatile __u64 *)tat;
		__u64 start = old > now ? old : now;
		__u64 debt = start - now;

		if (debt && debt + cost > depth)
			return 0;
		if (__sync_val_compare_and_swap(tat, old, start + cost) == old)
			return 1;
	}
	return 0;
}

/*
 * The bucket word of `key` in `map` (an LRU hash of __u64), made full when it
 * is not there yet; NULL only when the map cannot take it.
 */
static __always_inline __u64 *ws_bucket_of(void *map, void *key)
{
	__u64 *tat = bpf_map_lookup_elem(map, key);
	__u64 full = 0;

	if (tat)
		return tat;
	/* BPF_NOEXIST: a CPU that lost the race uses the winner's */
	bpf_map_update_elem(map, key, &full, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

#endif /* WIRESPEED_BUCKET_H */
