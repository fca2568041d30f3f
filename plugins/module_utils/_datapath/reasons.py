"""Stable drop reasons: the one table both the BPF programs and the Python side use.

files/bpf/include/wirespeed/reasons.h is generated from this table
(`python -m ...reasons`), and a unit test fails when the two differ, so a
counter always reads "dropped: deny_cidr", never "key 3". Numbers are never
reused or renumbered; new reasons are appended.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import sys

REASONS = (
    # (number, name, what it means)
    (0, "none", "not dropped"),
    (1, "malformed", "truncated or invalid headers"),
    (2, "deny_addr", "source address on the deny list"),
    (3, "deny_cidr", "source inside a denied network"),
    (4, "deny_port", "protocol or destination port denied"),
    (5, "default_policy", "no rule matched and the default policy drops"),
    (6, "syn_limit", "too many new connections from the source in the window"),
    (7, "banned", "source banned after exceeding the connection limit"),
    (8, "wg_invalid", "not a well-formed WireGuard message"),
    (9, "wg_handshake_limit", "too many WireGuard handshake initiations from the source"),
    (10, "rate_limited", "over the rate of its destination (egress_ratelimit)"),
    (11, "conn_limit", "a new connection over the per-source rate (conn_limiter)"),
    (12, "lb_no_backend", "to a load-balanced service whose table names no active backend"),
)
NAMES = {number: name for number, name, _text in REASONS}


def header() -> str:
    """The C header for the table."""
    lines = [
        "/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */",
        "/* Generated from plugins/module_utils/_datapath/reasons.py: edit that table, then run",
        " *   python -m ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.reasons",
        " *     > files/bpf/include/wirespeed/reasons.h",
        " */",
        "#ifndef WIRESPEED_REASONS_H",
        "#define WIRESPEED_REASONS_H",
        "",
        "enum ws_reason {",
    ]
    for number, name, text in REASONS:
        lines.append("\tWS_REASON_%s = %d,\t/* %s */" % (name.upper(), number, text))
    lines += ["\tWS_REASON_COUNT = %d," % (REASONS[-1][0] + 1), "};", "", "#endif /* WIRESPEED_REASONS_H */", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(header())
