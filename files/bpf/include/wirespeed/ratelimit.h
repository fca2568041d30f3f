/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Per-source event limits with bans, shared by ssh_limiter and
 * wireguard_filter.
 *
 * State lives in an LRU hash keyed by the source address (IPv4 as
 * ::ffff:a.b.c.d), so millions of sources evict the oldest instead of
 * filling the map. The count is updated with an atomic add and read back
 * afterwards, so packets of one source arriving on several CPUs at once are
 * each counted once and no more than `limit` pass per window; once the
 * limit is reached, every CPU sees it and stops writing the count. Creating a
 * source's entry uses BPF_NOEXIST, so two CPUs never overwrite each other.
 *
 * Time comes from ws_now() (wirespeed/clock.h): the coarse clock ticks once
 * per jiffy (1-10 ms, CONFIG_HZ), far finer than the windows and bans it
 * times, and costs a fraction of bpf_ktime_get_ns(): bench/programs.py
 * prints both.
 */
#ifndef WIRESPEED_RATELIMIT_H
#define WIRESPEED_RATELIMIT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "wirespeed/clock.h"
#include "wirespeed/parsing.h"

#ifndef WS_RL_SOURCES
#define WS_RL_SOURCES 65536	/* sources tracked at once (LRU) */
#endif

#define WS_RL_OK	0
#define WS_RL_LIMITED	1	/* this event passed the limit */
#define WS_RL_BANNED	2	/* the source is serving a ban */

struct ws_rl_state {
	__u64 window_start;	/* ns, ws_now() clock */
	__u64 banned_until;	/* ns; 0: not banned */
	__u32 count;		/* events in the current window */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WS_RL_SOURCES);
	__type(key, struct ws_src);
	__type(value, struct ws_rl_state);
} ws_rl_state SEC(".maps");

/*
 * Count one event of src against `limit` per `window_ns`; past the limit the
 * source is banned for ban_ns (0: no ban, only the events over the limit drop).
 */
static __always_inline int ws_rl_event(struct ws_src *src, __u32 limit,
				       __u64 window_ns, __u64 ban_ns)
{
	__u64 now = ws_now();
	struct ws_rl_state *st = bpf_map_lookup_elem(&ws_rl_state, src);

	if (!st) {
		struct ws_rl_state fresh = { .window_start = now, .count = 1 };

		if (bpf_map_update_elem(&ws_rl_state, src, &fresh,
					BPF_NOEXIST) == 0)
			return limit >= 1 ? WS_RL_OK : WS_RL_LIMITED;
		/* another CPU made it */
		st = bpf_map_lookup_elem(&ws_rl_state, src);
		if (!st)
			return WS_RL_OK;
	}
	if (st->banned_until > now)
		return WS_RL_BANNED;
	if (now - st->window_start >= window_ns) {
		st->window_start = now;
		st->count = 0;
	}
	/*
	 * A source already at its limit is refused on a plain read: a flood
	 * from several CPUs then only reads the shared line (no atomic per
	 * packet bouncing it between CPUs, bench/scaling.py). Below it, the
	 * count is read back after the atomic add: it then includes this
	 * event and every one added before, so no more than `limit` pass.
	 */
	if (*(volatile __u32 *)&st->count >= limit)
		goto limited;
	__sync_fetch_and_add(&st->count, 1);
	if (*(volatile __u32 *)&st->count > limit)
		goto limited;
	return WS_RL_OK;
limited:
	if (ban_ns && st->banned_until <= now)
		st->banned_until = now + ban_ns;
	return WS_RL_LIMITED;
}

/* Whether src is serving a ban, without counting an event. */
static __always_inline int ws_rl_banned(struct ws_src *src)
{
	struct ws_rl_state *st = bpf_map_lookup_elem(&ws_rl_state, src);

	return st && st->banned_until > ws_now();
}

#endif /* WIRESPEED_RATELIMIT_H */
