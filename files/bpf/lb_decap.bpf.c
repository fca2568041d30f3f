/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed lb_decap (XDP, chained): the backend's end of the load
 * balancer's encapsulation, for hosts whose kernel has no ipip / ip6_tunnel
 * (or that want no tunnel device).
 *
 * An IPIP (IPv4 in IPv4) or IP6IP6 packet whose inner destination is one of
 * this backend's VIPs (lb_decap_vips) loses its outer header here: the
 * Ethernet header (VLAN tags too) moves up to the inner IP header, the
 * EtherType stays (an IPv4 VIP is carried in IPv4, an IPv6 one in IPv6),
 * and the inner packet, untouched, goes on down the chain and to the stack,
 * which delivers it to the VIP on lo.  Anything else passes as it came: an
 * outer fragment, a tunnelled packet to another address.
 *
 * Maps:
 *   lb_decap_vips   HASH, a VIP (16 bytes, IPv4 as ::ffff:a.b.c.d) -> u8 1
 *   lb_decap_stats  per-CPU u64: decapsulated, passed (tunnelled, not to a
 *                   VIP of this backend)
 *   ws_stats (wirespeed/stats.h)
 */
#include "wirespeed/chain.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

#define DECAP_DONE	0
#define DECAP_NOT_VIP	1
#define DECAP_MAX_L2	(ETH_HLEN + 2 * sizeof(struct ws_vlan_hdr))

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct ws_src);
	__type(value, __u8);
} lb_decap_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lb_decap_stats SEC(".maps");

/* Write the saved L2 header (l2 bytes: 14, 18 or 22) at the packet's front. */
#define DECAP_PUT_L2(n)							\
	do {								\
		if (data + (n) > end)					\
			return -1;					\
		__builtin_memcpy(data, l2hdr, (n));			\
	} while (0)

/* Take `outer` bytes of outer header off after `l2` bytes of L2 header. */
static __always_inline int decap(struct xdp_md *ctx, __u32 l2, __u32 outer)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 l2hdr[DECAP_MAX_L2];

	if (data + DECAP_MAX_L2 > end)
		return -1;
	__builtin_memcpy(l2hdr, data, DECAP_MAX_L2);
	if (bpf_xdp_adjust_head(ctx, (int)outer))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (l2 == ETH_HLEN)
		DECAP_PUT_L2(ETH_HLEN);
	else if (l2 == ETH_HLEN + sizeof(struct ws_vlan_hdr))
		DECAP_PUT_L2(ETH_HLEN + sizeof(struct ws_vlan_hdr));
	else
		DECAP_PUT_L2(DECAP_MAX_L2);
	return 0;
}

SEC("xdp.frags")
int lb_decap(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ethhdr *eth;
	struct ws_src vip;
	__u32 l2, outer;
	int proto;

	proto = ws_parse_eth(&c, &eth);
	l2 = c.pos - (void *)(long)ctx->data;
	if (l2 > DECAP_MAX_L2)
		goto next;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *o, *in;

		if (ws_parse_ipv4(&c, &o) != IPPROTO_IPIP ||
		    (o->frag_off & bpf_htons(0x3fff)))
			goto next;
		in = c.pos;
		if ((void *)(in + 1) > c.end)
			goto next;
		ws_src_from_v4(&vip, in->daddr);
		outer = o->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *o, *in;

		if (ws_parse_ipv6(&c, &o) != IPPROTO_IPV6)
			goto next;
		in = c.pos;
		if ((void *)(in + 1) > c.end)
			goto next;
		__builtin_memcpy(vip.addr, &in->daddr, 16);
		outer = sizeof(*o);
	} else {
		goto next;
	}
	if (!bpf_map_lookup_elem(&lb_decap_vips, &vip)) {
		ws_bump(&lb_decap_stats, DECAP_NOT_VIP);
		goto next;
	}
	if (outer > 60 || decap(ctx, l2, outer) < 0)
		return ws_drop(ctx, WS_REASON_MALFORMED);
	ws_bump(&lb_decap_stats, DECAP_DONE);
next:
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
