# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the load_balancer role: its services checked, their Maglev tables and map entries, and what a
backend change moves (plugins/plugin_utils/_maglev.py)."""

from __future__ import annotations

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _maglev
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._input import filter_errors


def _size(size):
    try:
        return int(size) if not isinstance(size, bool) else size
    except (TypeError, ValueError):
        return size


@filter_errors
def lb_services(services, size=_maglev.DEFAULT_SIZE, variable="load_balancer_services", backends_needed=True):
    """The services checked (MACs not required yet): fails with one sentence naming the variable and value.
    backends_needed=False is the backend's side (tasks_from backend), where a service may list no backends."""
    return _maglev.check(services, variable, _size(size), backends_needed=backends_needed)


@filter_errors
def lb_entries(services, macs=None, size=_maglev.DEFAULT_SIZE, variable="load_balancer_services"):
    """The map entries and packed Maglev tables of the services, backends without a MAC taking it from macs."""
    return _maglev.entries(_maglev.check(services, variable, _size(size), macs=macs or {}))


@filter_errors
def lb_disruption(services, before=None, size=_maglev.DEFAULT_SIZE, variable="load_balancer_services"):
    """Per service: table slots and share of flows the services move from the host's current backends, by pair."""
    return _maglev.disruption(before or {}, _maglev.check(services, variable, _size(size)))


class FilterModule:
    def filters(self):
        return {"lb_services": lb_services, "lb_entries": lb_entries, "lb_disruption": lb_disruption}
