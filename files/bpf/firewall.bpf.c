/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed firewall (XDP, chained).
 *
 * Decisions, IPv4 and IPv6 alike:
 *   1. malformed headers         -> drop, "malformed" (config drop_malformed)
 *      not IP (ARP, LLDP...)     -> next program
 *   2. source in allow_v4/v6 (LPM)  -> next program, always: no rule below
 *                                      drops it
 *   3. source in deny_v4/v6 (exact)               -> drop, "deny_addr"
 *   4. source in deny_net_v4/v6 (LPM)             -> drop, "deny_cidr"
 *   5. a rule of deny_ports covers {proto, dport} -> drop, "deny_port"
 *      (later fragments carry no ports: only whole-protocol rules apply)
 *   6. otherwise: default_drop ? drop, "default_policy" : next program
 * Counters: a deny entry counts the packets it dropped; an allow entry the
 * packets it let through that a deny rule or the default policy would have
 * dropped.
 *
 * Maps (pinned under <bpffs>/wirespeed/<if>/<name>/maps/), values count hits:
 *   allow_v4, allow_v6, deny_net_v4, deny_net_v6
 *               LPM trie, key CIDR, value u64
 *   deny_v4 (key IPv4), deny_v6 (key IPv6)
 *               hash, value u64: 0, or the slot of deny_hits that counts
 *               the entry's hits per CPU (taken on its first hit; readers
 *               resolve it: datapath_info, bpf_map_entry, metrics).  A
 *               source flooding from every CPU at once bumps a counter no
 *               other CPU writes, so the list scales with the CPUs
 *               (bench/scaling.py), and memory per entry does not grow
 *               with them (bench/map_memory.py)
 *   deny_hits   per-CPU array of FW_HIT_SLOTS u64 counters; deny_hits_next
 *               the slots taken
 *   deny_ports  LPM trie, key {prefixlen, proto, pad, port (network order)},
 *               value u64; xdp_map_entry writes and shows the keys as
 *               "tcp/8080" and "icmp": prefixlen 8 is a whole protocol
 *               ({8, udp, 0, 0}), 32 one port ({32, tcp, 0, 8080}); one
 *               lookup finds either, the port rule first
 *   prefilter_v4     array of u64 words, mmapable: bit n (word n / 64, bit
 *                    n % 64) set when an entry of deny_v4 or deny_net_v4 may
 *                    cover an address of the IPv4 /24 number n; written only
 *                    by the engine (module_utils/_datapath/prefilter.py)
 *   prefilter_state  one u64: the index's generation; 0: not in use
 *               An IPv4 source whose /24 bit is clear, with a generation in
 *               place, skips the deny hash and the CIDR trie: the clean path
 *               stays flat however long the lists are. The index is a
 *               superset (entries are marked before they are listed), so it
 *               only saves time; without a generation every packet takes
 *               the full lookups.
 *   ws_stats    per-CPU packets/bytes per XDP action
 *   ws_reasons  per-CPU packets/bytes per drop reason (wirespeed/reasons.h)
 * Config (const volatile, set at load time):
 *   default_drop    0  pass what no rule matches; 1 drops it
 *   drop_malformed  1  drop packets whose headers are truncated or invalid
 * Sizes (defines at compile time): FW_DENY_MAX 131072, FW_NET_MAX 16384,
 * WS_ALLOW_MAX 4096, FW_PORTS_MAX 1024.
 */
#include "wirespeed/chain.h"
#include "wirespeed/allow.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

#ifndef FW_DENY_MAX
#define FW_DENY_MAX 131072
#endif
#ifndef FW_NET_MAX
#define FW_NET_MAX 16384
#endif
#ifndef FW_PORTS_MAX
#define FW_PORTS_MAX 1024
#endif

const volatile _Bool default_drop = 0;
const volatile _Bool drop_malformed = 1;

/* The deny lists' keys: one address each, named so that the map's BTF says
 * what its key is (datapath_info and diffs show 203.0.113.7, not a number). */
struct fw_addr_v4 {
	__be32 addr;
};

struct fw_addr_v6 {
	__u8 addr[16];
};

struct fw_port_rule {
	__u32 prefixlen;	/* 8: the whole protocol; 32: one port */
	__u8 proto;
	__u8 pad;
	__be16 port;
};

#define FW_HASH(_name, _key, _max)			\
	struct {					\
		__uint(type, BPF_MAP_TYPE_HASH);	\
		__uint(max_entries, _max);		\
		__type(key, _key);			\
		__type(value, __u64);			\
	} _name SEC(".maps")

FW_HASH(deny_v4, struct fw_addr_v4, FW_DENY_MAX);
FW_HASH(deny_v6, struct fw_addr_v6, FW_DENY_MAX);

/*
 * Hit counters of the deny hashes, per CPU, for the entries that hit: an
 * entry's value is 0 until its first hit takes the next free slot of
 * deny_hits (deny_hits_next counts the slots taken), then the slot's number.
 * The hashes' memory per entry is then the same whatever the CPU count;
 * only the FW_HIT_SLOTS counters are per CPU.  Slot 0 counts the hits of
 * entries that found the slots all taken.  Slots are not handed back: a
 * deleted entry's slot stays taken until the map is made again.
 */
#ifndef FW_HIT_SLOTS
#define FW_HIT_SLOTS 2048
#endif

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FW_HIT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} deny_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} deny_hits_next SEC(".maps");

/* The per-CPU counter of a deny hash entry (its value), a slot taken on
 * its first hit. */
static __always_inline __u64 *deny_counter(__u64 *entry)
{
	__u32 zero = 0, slot = *entry;
	__u64 *next, taken;

	if (!slot) {
		next = bpf_map_lookup_elem(&deny_hits_next, &zero);
		if (!next)
			return NULL;
		/* all taken: slot 0, read-only on the shared word */
		if (*next >= FW_HIT_SLOTS - 1)
			return bpf_map_lookup_elem(&deny_hits, &zero);
		taken = __sync_fetch_and_add(next, 1) + 1;
		if (taken >= FW_HIT_SLOTS)
			return bpf_map_lookup_elem(&deny_hits, &zero);
		/* another CPU may have given the entry a slot meanwhile */
		slot = __sync_val_compare_and_swap(entry, 0, taken);
		if (!slot)
			slot = taken;
	}
	if (slot >= FW_HIT_SLOTS)
		slot = 0;
	return bpf_map_lookup_elem(&deny_hits, &slot);
}
WS_LPM_MAP(deny_net_v4, struct ws_lpm_v4, FW_NET_MAX);
WS_LPM_MAP(deny_net_v6, struct ws_lpm_v6, FW_NET_MAX);
#define FW_PREFILTER_WORDS (1 << 18)	/* 2^24 /24s, 64 per word: 2 MiB */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FW_PREFILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
} prefilter_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} prefilter_state SEC(".maps");

/* 1: no entry of deny_v4 or deny_net_v4 covers saddr (the index says so). */
static __always_inline int v4_unlisted(__be32 saddr)
{
	__u32 zero = 0, slot = bpf_ntohl(saddr) >> 8, word = slot >> 6;
	__u64 *generation = bpf_map_lookup_elem(&prefilter_state, &zero);
	__u64 *bits;

	if (!generation || !*generation)
		return 0;
	bits = bpf_map_lookup_elem(&prefilter_v4, &word);
	return bits && !(*bits & (1ULL << (slot & 63)));
}

/*
 * An LPM trie rather than a hash of {proto, port}: one lookup answers both
 * "this port" and "the whole protocol", where a hash needs two.
 */
WS_LPM_MAP(deny_ports, struct fw_port_rule, FW_PORTS_MAX);

static __always_inline void hit(__u64 *counter, __u32 reason)
{
	if (!counter)
		return;
	if (reason == WS_REASON_DENY_ADDR) {
		counter = deny_counter(counter);
		if (counter)
			*counter += 1;	/* per CPU: no other CPU writes it */
	} else
		/* an LPM trie has no per-CPU values: shared, atomic */
		__sync_fetch_and_add(counter, 1);
}

/* The counter of the port or whole-protocol rule covering pkt, or NULL. */
static __always_inline __u64 *port_rule(struct ws_packet *pkt)
{
	struct fw_port_rule rule = {
		.prefixlen = 32,
		.proto = pkt->l4_proto,
		/* port 0: no port rule matches */
		.port = pkt->l4_present ? pkt->dport : 0,
	};

	return bpf_map_lookup_elem(&deny_ports, &rule);
}

/*
 * The deny decision comes first and the allow list is only consulted for a
 * packet that would be dropped: clean traffic, the common case, pays for no
 * allow lookup, and allow hits count the packets the allow list let through.
 */
SEC("xdp.frags")
int firewall(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ws_packet pkt = {};
	__u32 reason = WS_REASON_NONE;
	__u64 *entry = NULL;
	int ret;

	ret = ws_parse_packet(&c, &pkt);
	if (ret == WS_PKT_MALFORMED && drop_malformed)
		return ws_drop(ctx, WS_REASON_MALFORMED);
	if (ret != WS_PKT_OK)
		goto next;

	if (pkt.family == 4 && v4_unlisted(pkt.saddr.v4))
		goto ports;
	if (pkt.family == 4)
		entry = bpf_map_lookup_elem(&deny_v4, &pkt.saddr.v4);
	else
		entry = bpf_map_lookup_elem(&deny_v6, pkt.saddr.v6);
	if (entry)
		reason = WS_REASON_DENY_ADDR;
	else if ((entry = ws_lpm_find(&deny_net_v4, &deny_net_v6, pkt.family,
				      &pkt.saddr)))
		reason = WS_REASON_DENY_CIDR;
ports:
	if (!reason && (entry = port_rule(&pkt)))
		reason = WS_REASON_DENY_PORT;
	if (!reason && default_drop)
		reason = WS_REASON_DEFAULT_POLICY;
	if (!reason)
		goto next;

	if (ws_source_allowed(&pkt))
		goto next;
	hit(entry, reason);
	return ws_drop(ctx, reason);
next:
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
