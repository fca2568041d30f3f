/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed load_balancer (XDP, chained): an L4 balancer with Maglev
 * consistent hashing and direct server return.
 *
 * A packet to a service (VIP, protocol, port; ICMP echo requests to the VIP
 * for an icmp service) goes to one backend: the flow's entry in the
 * connection table if it has one whose backend still exists, else the
 * service's Maglev table at hash(flow) % size.  The packet keeps the VIP as
 * its destination: only the Ethernet header changes (destination: the
 * backend's MAC, source: the MAC it was sent to, this interface's), and it
 * leaves through the interface it came in on (XDP_TX).  The backend holds the
 * VIP on its loopback and answers the client directly, from the VIP.
 *
 * A backend with encap set sits anywhere the network routes to: the packet,
 * untouched, gets a new outer IP header in front of it (IPIP for an IPv4
 * VIP, IP6IP6 for IPv6) from encap_v4_saddr / encap_v6_saddr (the client's
 * own address when unset) to the backend, and the Ethernet destination is
 * the next hop's MAC (the role resolves it from the route).  The backend's
 * tunnel device takes the outer header off; it answers from the VIP as with
 * direct server return.  The path needs room for 20 (40) more bytes.
 *
 * Flow: source, destination, source port, destination port, protocol; for
 * ICMP echo the identifier stands in for the source port.  IPv4 and IPv6
 * (IPv4 addresses as ::ffff:a.b.c.d in the 16-byte fields).  Fragments and
 * everything that is not to a service go on down the chain.
 *
 * Config (const volatile):
 *   conn_table   1   remember each flow's backend (lb_conns): established
 *                    flows survive table changes, a draining backend keeps
 *                    its flows; 0: the table alone decides
 * Maps (written by the load_balancer role from tables made on the
 * controller, plugins/plugin_utils/_maglev.py):
 *   lb_services  VIP, port, proto -> the service's index and table size
 *   lb_maglev    LB_MAX_SERVICES tables of LB_TABLE_SLOTS backend ids;
 *                service i's slot s is entry i * LB_TABLE_SLOTS + s
 *   lb_backends  array: backend id -> address, MAC, flags (active or
 *                draining; 0: no backend), weight, service; an id is
 *                1 + service * 256 + n, 0 names no backend
 *   lb_conns     LRU: flow -> backend id
 *   lb_stats     per-CPU array: packets and bytes sent to each backend id
 *   ws_stats, ws_reasons (wirespeed/stats.h)
 * Drop reason: lb_no_backend (a table slot names no active backend: only
 * while a table is being written, or when it was never written).
 */
#include "wirespeed/chain.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

#ifndef LB_MAX_SERVICES
#define LB_MAX_SERVICES	16
#endif
#ifndef LB_TABLE_SLOTS
#define LB_TABLE_SLOTS	65537	/* the largest table size, a prime */
#endif
#define LB_BACKENDS_PER_SERVICE	256
/* backend ids: 1 + service * 256 + n; 0 is "no backend" */
#define LB_MAX_BACKENDS	(LB_MAX_SERVICES * LB_BACKENDS_PER_SERVICE + 1)
#define LB_CONNS	262144

#define LB_ACTIVE	1
#define LB_DRAINING	2

const volatile __u32 conn_table = 1;
/* outer source of encapsulated packets; 0 / :: takes the client's address */
const volatile __be32 encap_v4_saddr = 0;
const volatile __u8 encap_v6_saddr[16] = {};

struct lb_vip {
	__u8 addr[16];
	__be16 port;		/* 0 for icmp */
	__u8 proto;
	__u8 pad;
};

struct lb_service {
	__u32 index;
	__u32 size;		/* a prime <= LB_TABLE_SLOTS */
};

struct lb_backend {
	__u8 addr[16];
	__u8 mac[6];		/* the backend's, or the next hop's with encap */
	__u8 flags;
	__u8 encap;		/* 1: IPIP / IP6IP6 to addr; 0: MAC rewrite */
	__u32 weight;
	__u32 service;
};

struct lb_flow {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_SERVICES);
	__type(key, struct lb_vip);
	__type(value, struct lb_service);
} lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_SERVICES * LB_TABLE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} lb_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_backend);
} lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CONNS);
	__type(key, struct lb_flow);
	__type(value, __u32);
} lb_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct ws_action_stats);
} lb_stats SEC(".maps");

/* A 32-bit mix of the flow (murmur3's finalizer over its words). */
static __always_inline __u32 lb_hash(struct lb_flow *f)
{
	__u32 *w = (__u32 *)f;
	__u32 h = 0x9747b28c;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*f) / 4); i++) {
		__u32 k = w[i] * 0xcc9e2d51;

		k = (k << 15) | (k >> 17);
		h ^= k * 0x1b873593;
		h = ((h << 13) | (h >> 19)) * 5 + 0xe6546b64;
	}
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* The flow's backend: the connection table's, else the Maglev table's. */
static __always_inline struct lb_backend *
lb_pick(struct lb_flow *flow, struct lb_service *svc, __u32 *id)
{
	struct lb_backend *be;
	__u32 *known, *slot, key;

	if (conn_table) {
		known = bpf_map_lookup_elem(&lb_conns, flow);
		if (known) {
			be = bpf_map_lookup_elem(&lb_backends, known);
			/* active or draining, and still this service's */
			if (be && be->flags && be->service == svc->index) {
				*id = *known;
				return be;
			}
		}
	}
	if (!svc->size || svc->size > LB_TABLE_SLOTS ||
	    svc->index >= LB_MAX_SERVICES)
		return 0;
	key = svc->index * LB_TABLE_SLOTS + lb_hash(flow) % svc->size;
	slot = bpf_map_lookup_elem(&lb_maglev, &key);
	if (!slot)
		return 0;
	be = bpf_map_lookup_elem(&lb_backends, slot);
	if (!be || !(be->flags & LB_ACTIVE) || be->service != svc->index)
		return 0;
	*id = *slot;
	if (conn_table)
		bpf_map_update_elem(&lb_conns, flow, id, BPF_ANY);
	return be;
}

/* The Internet checksum of a 20-byte IPv4 header. */
static __always_inline __u16 lb_ipv4_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

#define LB_MAX_L2	(ETH_HLEN + 2 * sizeof(struct ws_vlan_hdr))

/*
 * Put an outer IPv4 or IPv6 header to the backend between the L2 header
 * (VLAN tags included) and the packet; 0, or -1 when it cannot be done.
 * Only the first buffer changes (multi-buffer packets too).
 */
static __always_inline int lb_encap(struct xdp_md *ctx, struct ws_packet *pkt,
				    struct lb_backend *be, __u32 hash)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 l2 = pkt->l3 - data, grow, inner;
	__u8 tos;
	int i;

	if (l2 > LB_MAX_L2)
		return -1;
	if (pkt->family == 4) {
		struct iphdr *ip = pkt->l3;

		if ((void *)(ip + 1) > end)
			return -1;
		grow = sizeof(struct iphdr);
		inner = bpf_ntohs(ip->tot_len);
		tos = ip->tos;
	} else {
		struct ipv6hdr *ip6 = pkt->l3;

		if ((void *)(ip6 + 1) > end)
			return -1;
		grow = sizeof(struct ipv6hdr);
		inner = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		tos = 0;
	}
	if (bpf_xdp_adjust_head(ctx, -(int)grow))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	/* move the L2 header to the new front, two bytes at a time; the
	 * bytes copied past it are overwritten by the outer header */
	if (data + sizeof(struct ipv6hdr) + LB_MAX_L2 > end)
		return -1;
#pragma unroll
	for (i = 0; i < (int)LB_MAX_L2; i += 2)
		*(__u16 *)(data + i) = *(__u16 *)(data + grow + i);
	{
		struct ethhdr *eth = data;

		__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	}
	if (pkt->family == 4) {
		struct iphdr *o = data + l2;

		if ((void *)(o + 1) > end)
			return -1;
		o->version = 4;
		o->ihl = 5;
		o->tos = tos;
		o->tot_len = bpf_htons(inner + sizeof(*o));
		o->id = 0;
		o->frag_off = 0;
		o->ttl = 64;
		o->protocol = IPPROTO_IPIP;
		o->check = 0;
		o->saddr = encap_v4_saddr ? encap_v4_saddr : pkt->saddr.v4;
		__builtin_memcpy(&o->daddr, &be->addr[12], 4);
		o->check = lb_ipv4_csum(o);
	} else {
		struct ipv6hdr *o = data + l2;
		__u32 first;

		if ((void *)(o + 1) > end)
			return -1;
		/* version 6, no traffic class, the flow's hash as flow label
		 * (ECMP and RSS entropy on the way to the backend) */
		first = (6U << 28) | (hash & 0xfffff);
		*(__be32 *)o = bpf_htonl(first);
		o->payload_len = bpf_htons(inner);
		o->nexthdr = IPPROTO_IPV6;
		o->hop_limit = 64;
		/* word by word through the volatile: a memcpy of the const
		 * array would be folded to its compile-time zeros */
		const volatile __u32 *src6 = (const volatile __u32 *)encap_v6_saddr;
		__u32 w[4] = {src6[0], src6[1], src6[2], src6[3]};

		if (w[0] | w[1] | w[2] | w[3])
			__builtin_memcpy(&o->saddr, w, 16);
		else
			__builtin_memcpy(&o->saddr, pkt->saddr.v6, 16);
		__builtin_memcpy(&o->daddr, be->addr, 16);
	}
	return 0;
}

SEC("xdp.frags")
int load_balancer(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ws_packet pkt = {};
	struct lb_flow flow = {};
	struct lb_vip vip = {};
	struct lb_service *svc;
	struct lb_backend *be;
	struct ethhdr *eth;
	__be16 echo_id;
	__u32 id = 0;

	if (ws_parse_packet(&c, &pkt) != WS_PKT_OK || pkt.fragment)
		goto next;
	ws_addr_key((struct ws_src *)vip.addr, &pkt, 1);
	vip.proto = pkt.l4_proto;
	if (pkt.l4_proto == IPPROTO_ICMP || pkt.l4_proto == IPPROTO_ICMPV6) {
		if (!ws_icmp_echo_id(&pkt, c.end, &echo_id))
			goto next;
		flow.sport = echo_id;
	} else if (pkt.l4_proto == IPPROTO_TCP ||
		   pkt.l4_proto == IPPROTO_UDP) {
		vip.port = pkt.dport;
		flow.sport = pkt.sport;
		flow.dport = pkt.dport;
	} else {
		goto next;
	}
	svc = bpf_map_lookup_elem(&lb_services, &vip);
	if (!svc)
		goto next;

	ws_addr_key((struct ws_src *)flow.saddr, &pkt, 0);
	__builtin_memcpy(flow.daddr, vip.addr, 16);
	flow.proto = pkt.l4_proto;
	be = lb_pick(&flow, svc, &id);
	if (!be)
		return ws_drop(ctx, WS_REASON_LB_NO_BACKEND);

	if (be->encap) {
		if (lb_encap(ctx, &pkt, be, lb_hash(&flow)) < 0)
			return ws_drop(ctx, WS_REASON_MALFORMED);
		ws_count(&lb_stats, id, ws_xdp_len(ctx));
		return ws_record(ctx, XDP_TX);
	}
	eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return ws_drop(ctx, WS_REASON_MALFORMED);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	ws_count(&lb_stats, id, ws_xdp_len(ctx));
	return ws_record(ctx, XDP_TX);
next:
	return ws_pass(ctx);
}

char _license[] SEC("license") = "GPL";
