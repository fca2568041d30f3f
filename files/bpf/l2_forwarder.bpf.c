/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wirespeed l2_forwarder (XDP, chained): forwards Ethernet frames between
 * the forwarder's ports by destination MAC, with no kernel bridge in the
 * path.  Every port runs its own copy, with the same map contents.
 *
 *   destination in l2_fdb, another port   redirect to that port
 *                                          (bpf_redirect_map on l2_ports)
 *   destination in l2_fdb with port 0     pass: the host's own address
 *   destination is the ingress port       pass (nothing to forward)
 *   broadcast or multicast (ARP, ND)      flood: every port in l2_ports but
 *                                          the ingress one (BPF_F_BROADCAST
 *                                          | BPF_F_EXCLUDE_INGRESS, 5.13+)
 *   unknown unicast                       flood as well (flood_unknown 1),
 *                                          or pass to the stack (0)
 *
 * A redirect that finds no device (a port gone from l2_ports) passes the
 * frame instead of dropping it.  A veth port delivers redirected frames in
 * native mode only when its peer runs an XDP program: the role attaches
 * l2_peer.bpf.c there.
 *
 * Config (const volatile):
 *   flood_unknown  1   flood unicast frames to unknown MACs (0: pass them)
 * Maps:
 *   l2_ports   DEVMAP_HASH, key and value the ifindex of each port
 *   l2_fdb     HASH, key a MAC, value the ifindex of its port (0: local)
 *   l2_counters  per-CPU u64 per outcome: forwarded, flooded, passed,
 *              unknown (the unknown unicast among flooded or passed)
 *   ws_stats, ws_reasons (wirespeed/stats.h)
 */
#include "wirespeed/chain.h"
#include "wirespeed/parsing.h"
#include "wirespeed/stats.h"

#define L2_MAX_PORTS	64
#define L2_FDB_SIZE	4096

enum l2_outcome {
	L2_FORWARDED,
	L2_FLOODED,
	L2_PASSED,
	L2_UNKNOWN,
	L2_OUTCOMES,
};

struct l2_mac {
	__u8 addr[ETH_ALEN];
};

const volatile __u32 flood_unknown = 1;

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, L2_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} l2_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L2_FDB_SIZE);
	__type(key, struct l2_mac);
	__type(value, __u32);
} l2_fdb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L2_OUTCOMES);
	__type(key, __u32);
	__type(value, __u64);
} l2_counters SEC(".maps");

static __always_inline int l2_pass(struct xdp_md *ctx)
{
	ws_bump(&l2_counters, L2_PASSED);
	return ws_pass(ctx);
}

static __always_inline int l2_flood(struct xdp_md *ctx)
{
	long ret = bpf_redirect_map(&l2_ports, 0,
				    BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);

	if (ret != XDP_REDIRECT)
		return l2_pass(ctx);
	ws_bump(&l2_counters, L2_FLOODED);
	return ws_record(ctx, XDP_REDIRECT);
}

SEC("xdp.frags")
int l2_forwarder(struct xdp_md *ctx)
{
	struct ws_cursor c = ws_cursor_xdp(ctx);
	struct ethhdr *eth;
	struct l2_mac dst;
	__u32 *port;
	long ret;

	if (ws_parse_eth(&c, &eth) < 0)
		return l2_pass(ctx);	/* a runt: the stack counts it */
	__builtin_memcpy(dst.addr, eth->h_dest, ETH_ALEN);
	if (dst.addr[0] & 1)		/* broadcast and multicast */
		return l2_flood(ctx);
	port = bpf_map_lookup_elem(&l2_fdb, &dst);
	if (!port) {
		ws_bump(&l2_counters, L2_UNKNOWN);
		return flood_unknown ? l2_flood(ctx) : l2_pass(ctx);
	}
	if (*port == 0 || *port == ctx->ingress_ifindex)
		return l2_pass(ctx);
	ret = bpf_redirect_map(&l2_ports, *port, XDP_PASS);
	if (ret != XDP_REDIRECT)
		return l2_pass(ctx);	/* the port left l2_ports */
	ws_bump(&l2_counters, L2_FORWARDED);
	return ws_record(ctx, XDP_REDIRECT);
}

char _license[] SEC("license") = "GPL";
