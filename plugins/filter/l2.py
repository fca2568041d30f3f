# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the l2_forwarder role: its variables checked, and its plan from what the host reports."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _l2


def _wrap(func):
    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _l2.L2Error as exc:
            raise AnsibleFilterError(str(exc)) from None
    call.__name__ = func.__name__
    return call


@_wrap
def l2_check(ports, static=None, management=None):
    """{ports, static} checked: ports named once, not the management interface; static MACs parsed, on ports."""
    checked = _l2.ports(ports, management)
    return {"ports": checked, "static": _l2.static(static, checked)}


@_wrap
def l2_plan(checked, links, nsids, peer_links=None, neighbours=None, fdb=None):
    return _l2.plan(checked["ports"], checked["static"], links or [], nsids or [], peer_links or {}, neighbours,
                    fdb)


class FilterModule:
    def filters(self):
        return {"l2_check": l2_check, "l2_plan": l2_plan}
