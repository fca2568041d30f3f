/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Flow export: count every packet into its flow, in the kernel, and pass it
 * on (this program never drops).  Placed last in the chain by default, so it
 * sees what the programs before it let through.
 *
 * Maps (pinned under <bpffs>/wirespeed/<if>/<name>/maps/):
 *   flows        per-CPU hash, key struct flow_key (5-tuple), value
 *                struct flow_value {packets, bytes, first and last seen
 *                (bpf_ktime_get_coarse_ns: CLOCK_MONOTONIC_COARSE, about
 *                a millisecond fine, a third of the cost of the precise
 *                clock), OR of TCP flags}; the host agent (flows.py)
 *                reads it, sums the CPUs and evicts flows idle or active
 *                for too long.
 *   flow_events  ring buffer: a struct flow_record for a flow that did not
 *                fit in the full table (one packet's worth), never a record
 *                per packet otherwise.
 *   flow_full    per-CPU {table_until, ring_until}: after a failed insert
 *                (table full) or reservation (ring full), new flows skip
 *                the attempt for FLOW_FULL_BACKOFF_NS (10 ms) and are
 *                counted as before
 *   flow_stats   per-CPU counters, see enum flow_stat: every packet that
 *                found the table full, every bpf_ringbuf_reserve() that
 *                failed, every record sent, every packet left out by the
 *                sampling.  Nothing is lost without being counted.
 * Config (const volatile, set at load time):
 *   sample_rate  1 records every packet; N records one in N, chosen at
 *                random, and every record carries N so counts scale back.
 * Sizes (defines at compile time): FLOW_TABLE_SIZE 65536 flows,
 * FLOW_RING_SIZE 262144 bytes (a power of two, a multiple of the page).
 */
#include "wirespeed/chain.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

#ifndef FLOW_TABLE_SIZE
#define FLOW_TABLE_SIZE 65536
#endif
#ifndef FLOW_RING_SIZE
#define FLOW_RING_SIZE (256 * 1024)
#endif

const volatile __u32 sample_rate = 1;

struct flow_key {
	__u8 saddr[16];		/* IPv4 in the first 4 bytes, the rest 0 */
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;		/* 4 or 6 */
	__u8 pad[2];
};

struct flow_value {
	__u64 packets;
	__u64 bytes;
	__u64 first_ns;
	__u64 last_ns;
	__u8 tcp_flags;
	__u8 pad[7];
};

struct flow_record {
	struct flow_key key;
	struct flow_value value;
	__u32 sample_rate;
	__u32 kind;		/* 1: a flow the full table could not hold */
};

enum flow_stat {
	FLOW_TABLE_FULL = 0,
	FLOW_RINGBUF_FAILED = 1,
	FLOW_RECORDS_SENT = 2,
	FLOW_SAMPLED_OUT = 3,
	FLOW_STATS_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, FLOW_TABLE_SIZE);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FLOW_RING_SIZE);
} flow_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOW_STATS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} flow_stats SEC(".maps");

/*
 * Per CPU: until when (coarse clock) a full table, or a full ring buffer,
 * is taken as still full.  A packet of a new flow then skips the insert
 * that would fail (and the lookup after it), or the reservation, and is
 * counted all the same; one attempt per FLOW_FULL_BACKOFF_NS finds out
 * when the agent made room.
 */
#ifndef FLOW_FULL_BACKOFF_NS
#define FLOW_FULL_BACKOFF_NS (10 * 1000 * 1000)
#endif
#define FLOW_E2BIG 7	/* the hash's answer when it has no free element */

struct flow_backoff {
	__u64 table_until;
	__u64 ring_until;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_backoff);
} flow_full SEC(".maps");

static __always_inline void flow_count(__u32 stat)
{
	__u64 *n = bpf_map_lookup_elem(&flow_stats, &stat);

	if (n)
		*n += 1;	/* per-CPU: no atomics needed */
}

static __always_inline void flow_overflow(struct flow_key *key,
					  struct flow_value *value,
					  struct flow_backoff *full, __u64 now)
{
	struct flow_record *rec;

	flow_count(FLOW_TABLE_FULL);
	if (full && now < full->ring_until) {
		flow_count(FLOW_RINGBUF_FAILED);
		return;
	}
	rec = bpf_ringbuf_reserve(&flow_events, sizeof(*rec), 0);
	if (!rec) {
		if (full)
			full->ring_until = now + FLOW_FULL_BACKOFF_NS;
		flow_count(FLOW_RINGBUF_FAILED);
		return;
	}
	__builtin_memcpy(&rec->key, key, sizeof(*key));
	__builtin_memcpy(&rec->value, value, sizeof(*value));
	rec->sample_rate = sample_rate;
	rec->kind = 1;
	bpf_ringbuf_submit(rec, 0);
	flow_count(FLOW_RECORDS_SENT);
}

SEC("xdp.frags")
int flow_export_prog(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ws_packet pkt = {};
	struct flow_key key = {};
	struct flow_value *found;
	__u64 now, len;

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK)
		return ws_pass(ctx);
	if (sample_rate > 1 && bpf_get_prandom_u32() % sample_rate) {
		flow_count(FLOW_SAMPLED_OUT);
		return ws_pass(ctx);
	}
	__builtin_memcpy(key.saddr, pkt.saddr.v6, 16);
	__builtin_memcpy(key.daddr, pkt.daddr.v6, 16);
	key.sport = pkt.sport;
	key.dport = pkt.dport;
	key.proto = pkt.l4_proto;
	key.family = pkt.family;
	now = bpf_ktime_get_coarse_ns();
	len = ws_xdp_len(ctx);

	found = bpf_map_lookup_elem(&flows, &key);
	if (!found) {
		struct flow_value fresh = {
			.packets = 1, .bytes = len, .first_ns = now,
			.last_ns = now, .tcp_flags = pkt.tcp_flags,
		};
		__u32 zero = 0;
		struct flow_backoff *full = bpf_map_lookup_elem(&flow_full,
								&zero);
		long err;

		if (full && now < full->table_until) {
			flow_overflow(&key, &fresh, full, now);
			return ws_pass(ctx);
		}
		err = bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
		if (!err)
			return ws_pass(ctx);
		if (err == -FLOW_E2BIG && full)
			full->table_until = now + FLOW_FULL_BACKOFF_NS;
		/* another CPU added it meanwhile (this CPU's copy is 0),
		 * or the table is full */
		found = bpf_map_lookup_elem(&flows, &key);
		if (!found) {
			flow_overflow(&key, &fresh, full, now);
			return ws_pass(ctx);
		}
	}
	/* this CPU's copy of the value: plain updates are safe */
	if (!found->first_ns)
		found->first_ns = now;
	found->packets += 1;
	found->bytes += len;
	found->last_ns = now;
	found->tcp_flags |= pkt.tcp_flags;
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
