/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A list of ports set as configuration (xdp_program config, e.g.
 * ports: [22, 2222]), shared by ssh_limiter, wireguard_filter and mirror.
 *
 * The list is a `const volatile` array in .rodata, so the verifier knows every
 * entry and the check below becomes a few compares: no map lookup (a hash
 * lookup costs as much as the rest of these programs; bench/programs.py shows
 * both). Changing the list reloads the program; its maps, and so the
 * per-source state, are kept.
 */
#ifndef WIRESPEED_PORTS_H
#define WIRESPEED_PORTS_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>

#define WS_PORTS_MAX 16		/* ports per list; the first 0 ends the list */

/* Declare a port list: host order, unused entries 0. */
#define WS_PORT_LIST(_name) const volatile __u16 _name[WS_PORTS_MAX]

/* Whether `port` (network order, as in the packet) is on the list. */
static __always_inline int ws_port_listed(const volatile __u16 *list,
					  __be16 port)
{
	__u16 p = bpf_ntohs(port);
	int i;

#pragma unroll
	for (i = 0; i < WS_PORTS_MAX; i++) {
		if (!list[i])
			return 0;
		if (list[i] == p)
			return 1;
	}
	return 0;
}

#endif /* WIRESPEED_PORTS_H */
