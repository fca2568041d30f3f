# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the l2_forwarder role: its variables checked, and its plan from what the host reports."""

from __future__ import annotations

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _l2
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._input import filter_errors


@filter_errors
def l2_check(ports, static=None, management=None):
    """{ports, static} checked: ports named once, not the management interface; static MACs parsed, on ports."""
    checked = _l2.ports(ports, management)
    return {"ports": checked, "static": _l2.static(static, checked)}


@filter_errors
def l2_plan(checked, links, nsids, peer_links=None, neighbours=None, fdb=None):
    return _l2.plan(checked["ports"], checked["static"], links or [], nsids or [], peer_links or {}, neighbours,
                    fdb)


class FilterModule:
    def filters(self):
        return {"l2_check": l2_check, "l2_plan": l2_plan}
