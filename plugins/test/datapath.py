# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests for the roles' preflight."""

from __future__ import annotations


def xdp_mode_impossible(name, mode, interfaces):
    """Whether XDP `mode` is known not to work on interface `name` (from datapath_info's host.interfaces)."""
    facts = (interfaces or {}).get(name) or {}
    if mode == "native":
        return facts.get("xdp_native") is False
    if mode == "offload":
        return not facts.get("xdp_offload")
    return False


class TestModule:
    def tests(self):
        return {"xdp_mode_impossible": xdp_mode_impossible}
