/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TC: leave with the configured verdict through ws_record_skb(), for the test
 * of how TC verdicts are counted in ws_stats.
 */
#include <linux/pkt_cls.h>
#include "wirespeed/stats.h"

const volatile __u32 verdict = (__u32)TC_ACT_UNSPEC;

SEC("tc")
int tc_verdict(struct __sk_buff *skb)
{
	return ws_record_skb(skb, (int)verdict);
}

char _license[] SEC("license") = "GPL";
