/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The clock of the rate limiters (ratelimit.h, bucket.h users).
 *
 * ws_now() is the kernel's coarse monotonic clock, ws_now_fine() the exact
 * one, each plus ws_clock.offset_ns, or ws_clock.frozen_ns when that is set.
 * Production leaves both at zero; tests move or freeze time instead of
 * sleeping. The coarse clock ticks once per jiffy (1-10 ms): fine for
 * windows of seconds, too coarse to pace bytes (egress_ratelimit uses
 * ws_now_fine()).
 */
#ifndef WIRESPEED_CLOCK_H
#define WIRESPEED_CLOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct ws_clock_value {
	__u64 offset_ns;
	__u64 frozen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ws_clock_value);
} ws_clock SEC(".maps");

static __always_inline __u64 ws_clock_adjust(__u64 now)
{
	__u32 zero = 0;
	struct ws_clock_value *clk = bpf_map_lookup_elem(&ws_clock, &zero);

	if (clk && clk->frozen_ns)
		return clk->frozen_ns;
	return now + (clk ? clk->offset_ns : 0);
}

/* Coarse: one tick per jiffy, cheap. */
static __always_inline __u64 ws_now(void)
{
	return ws_clock_adjust(bpf_ktime_get_coarse_ns());
}

/* Exact to the nanosecond, for pacing bytes. */
static __always_inline __u64 ws_now_fine(void)
{
	return ws_clock_adjust(bpf_ktime_get_ns());
}

#endif /* WIRESPEED_CLOCK_H */
