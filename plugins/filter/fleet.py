# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for status.yml's fleet report: its data (status.json) and its HTML page (made in plugin_utils/_fleet.py)."""

from __future__ import annotations

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _fleet


class FilterModule:
    def filters(self):
        return {"_fleet_report": _fleet.fleet_report, "_fleet_report_html": _fleet.fleet_report_html}
