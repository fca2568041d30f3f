# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the load_balancer role: its services checked, their Maglev tables and map entries, and what a
backend change moves (plugins/plugin_utils/_maglev.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _maglev
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._addresses import AddressError


def _size(size):
    try:
        return int(size) if not isinstance(size, bool) else size
    except (TypeError, ValueError):
        return size


def lb_services(services, size=_maglev.DEFAULT_SIZE, variable="load_balancer_services"):
    """The services checked (MACs not required yet): fails with one sentence naming the variable and value."""
    try:
        return _maglev.check(services, variable, _size(size))
    except AddressError as exc:
        raise AnsibleFilterError(str(exc)) from None


def lb_entries(services, macs=None, size=_maglev.DEFAULT_SIZE, variable="load_balancer_services"):
    """The map entries and packed Maglev tables of the services, backends without a MAC taking it from macs."""
    try:
        return _maglev.entries(_maglev.check(services, variable, _size(size), macs=macs or {}))
    except AddressError as exc:
        raise AnsibleFilterError(str(exc)) from None


def lb_disruption(services, before=None, size=_maglev.DEFAULT_SIZE, variable="load_balancer_services"):
    """Per service: table slots and share of flows the services move from the host's current backends, by pair."""
    try:
        return _maglev.disruption(before or {}, _maglev.check(services, variable, _size(size)))
    except AddressError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"lb_services": lb_services, "lb_entries": lb_entries, "lb_disruption": lb_disruption}
