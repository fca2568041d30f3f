/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The allow list of sources (allow_v4, allow_v6) shared by firewall,
 * ssh_limiter and wireguard_filter; xdp_map_entry writes it as CIDRs.
 */
#ifndef WIRESPEED_ALLOW_H
#define WIRESPEED_ALLOW_H

#include "wirespeed/lpm.h"

#ifndef WS_ALLOW_MAX
#define WS_ALLOW_MAX 4096
#endif

/* Sources a program lets through untouched: allow_v4 and allow_v6. */
WS_LPM_MAP(allow_v4, struct ws_lpm_v4, WS_ALLOW_MAX);
WS_LPM_MAP(allow_v6, struct ws_lpm_v6, WS_ALLOW_MAX);

/* Whether the packet's source is on the allow list (counting the hit). */
static __always_inline int ws_source_allowed(struct ws_packet *pkt)
{
	__u64 *hits = ws_lpm_find(&allow_v4, &allow_v6, pkt->family,
				  &pkt->saddr);

	if (!hits)
		return 0;
	__sync_fetch_and_add(hits, 1);	/* shared across CPUs: atomic */
	return 1;
}

#endif /* WIRESPEED_ALLOW_H */
