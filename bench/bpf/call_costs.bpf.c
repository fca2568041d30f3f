/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One kernel operation per packet, chosen by `op` at load time, for
 * bench/programs.py: what a map lookup or a clock read costs on this machine,
 * beside the programs that are made of them.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define OP_NONE		0
#define OP_HASH		1	/* hash map lookup, 4-byte key (the packet's IPv4 source) */
#define OP_LPM		2	/* LPM trie lookup, /32 key */
#define OP_ARRAY	3	/* array lookup (inlined by the verifier) */
#define OP_KTIME	4	/* bpf_ktime_get_ns() */
#define OP_KTIME_COARSE	5	/* bpf_ktime_get_coarse_ns() */

const volatile __u32 op = OP_NONE;

struct lpm_v4 {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm_v4);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} array SEC(".maps");

__u64 sink;

SEC("xdp")
int call_costs(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct lpm_v4 prefix = { .prefixlen = 32 };
	__u32 addr, index;

	if (data + 34 > end)
		return XDP_ABORTED;
	addr = *(__u32 *)(data + 26);
	prefix.addr = addr;
	index = addr & 0xff;
	if (op == OP_HASH && bpf_map_lookup_elem(&hash, &addr))
		return XDP_DROP;
	if (op == OP_LPM && bpf_map_lookup_elem(&lpm, &prefix))
		return XDP_DROP;
	if (op == OP_ARRAY) {
		__u64 *v = bpf_map_lookup_elem(&array, &index);

		if (v && *v)
			return XDP_DROP;
	}
	if (op == OP_KTIME)
		sink = bpf_ktime_get_ns();
	if (op == OP_KTIME_COARSE)
		sink = bpf_ktime_get_coarse_ns();
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
