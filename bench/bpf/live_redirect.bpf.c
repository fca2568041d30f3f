/* SPDX-License-Identifier: GPL-2.0 */
/* The traffic generator: with BPF_PROG_TEST_RUN and BPF_F_TEST_XDP_LIVE_FRAMES, every
 * test frame is sent out of `out_ifindex` (a veth) as if it had been received and redirected. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u32 out_ifindex = 0;
/* 0: send the frame as it is; N (a power of two): rewrite its IPv4 source
 * to first_source + (a per-CPU counter mod N), so that each generator cycles
 * through the same N sources */
const volatile __u32 sources = 0;
const volatile __u32 first_source = 0;	/* host order */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sent SEC(".maps");

SEC("xdp")
int live_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0, *n;
	__be32 *saddr = data + 14 + 12;	/* Ethernet, then IPv4's source */

	if (sources && (void *)(saddr + 1) <= end &&
	    (n = bpf_map_lookup_elem(&sent, &zero))) {
		*saddr = bpf_htonl(first_source + (*n & (sources - 1)));
		*n += 1;
	}
	return bpf_redirect(out_ifindex, 0);
}

char _license[] SEC("license") = "GPL";
