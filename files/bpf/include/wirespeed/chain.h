/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The wirespeed XDP chain.
 *
 * One small root program (wirespeed_root.bpf.c) is attached to the
 * interface.  Programs live in the slots of a program array; a second array
 * holds, for every slot, the slot that runs next.  The root reads the entry
 * WS_CHAIN_HEAD, every chained program reads its own entry, so the order is a
 * linked list the loader rewrites with single-element updates: inserting,
 * replacing or removing one program never touches the others.
 *
 * A chained program includes this header and ends every "let it through"
 * path with `return ws_chain_next(ctx);`.  The loader sets ws_chain_slot and
 * makes both maps the interface's pinned ones.  A program that does not
 * include this header still runs in a slot, but nothing after it does.
 */
#ifndef WIRESPEED_CHAIN_H
#define WIRESPEED_CHAIN_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define WS_CHAIN_SLOTS	32		/* programs per interface */
#define WS_CHAIN_HEAD	WS_CHAIN_SLOTS	/* link entry read by the root */
#define WS_CHAIN_END	WS_CHAIN_SLOTS	/* "no next program" */

struct ws_chain_link {
	__u32 next;		/* slot that runs after this one */
	__u32 priority;		/* for user space: the order's key */
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, WS_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} ws_chain_progs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WS_CHAIN_SLOTS + 1);
	__type(key, __u32);
	__type(value, struct ws_chain_link);
} ws_chain_links SEC(".maps");

/* This program's slot; set by the loader before load. */
const volatile __u32 ws_chain_slot = WS_CHAIN_HEAD;

/*
 * Hand the packet to the next program of the chain.  Returns only when there
 * is none (end of the chain or an empty slot): the packet then passes.
 */
static __always_inline int ws_chain_next(struct xdp_md *ctx)
{
	__u32 key = ws_chain_slot;
	struct ws_chain_link *link;

	link = bpf_map_lookup_elem(&ws_chain_links, &key);
	if (link)
		bpf_tail_call(ctx, &ws_chain_progs, link->next);
	return XDP_PASS;
}

#endif /* WIRESPEED_CHAIN_H */
