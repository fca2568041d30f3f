/* SPDX-License-Identifier: GPL-2.0 */
/* A TC program the verifier refuses: it reads the packet without a bounds check. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tc_unchecked(struct __sk_buff *skb)
{
	unsigned char *p = (void *)(long)skb->data;

	return p[20] ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
