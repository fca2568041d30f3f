/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Generated from plugins/module_utils/_datapath/reasons.py: edit that table, then run
 *   python -m ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.reasons
 *     > files/bpf/include/wirespeed/reasons.h
 */
#ifndef WIRESPEED_REASONS_H
#define WIRESPEED_REASONS_H

enum ws_reason {
	WS_REASON_NONE = 0,	/* not dropped */
	WS_REASON_MALFORMED = 1,	/* truncated or invalid headers */
	WS_REASON_DENY_ADDR = 2,	/* source address on the deny list */
	WS_REASON_DENY_CIDR = 3,	/* source inside a denied network */
	WS_REASON_DENY_PORT = 4,	/* protocol or destination port denied */
	WS_REASON_DEFAULT_POLICY = 5,	/* no rule matched and the default policy drops */
	WS_REASON_SYN_LIMIT = 6,	/* too many new connections from the source in the window */
	WS_REASON_BANNED = 7,	/* source banned after exceeding the connection limit */
	WS_REASON_WG_INVALID = 8,	/* not a well-formed WireGuard message */
	WS_REASON_WG_HANDSHAKE_LIMIT = 9,	/* too many WireGuard handshake initiations from the source */
	WS_REASON_RATE_LIMITED = 10,	/* over the rate of its destination (egress_ratelimit) */
	WS_REASON_CONN_LIMIT = 11,	/* a new connection over the per-source rate (conn_limiter) */
	WS_REASON_LB_NO_BACKEND = 12,	/* to a load-balanced service whose table names no active backend */
	WS_REASON_COUNT = 13,
};

#endif /* WIRESPEED_REASONS_H */
