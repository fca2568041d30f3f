# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that print the tables rollback.yml and status.yml show (the rows are made in plugin_utils/_report.py)."""

from __future__ import annotations

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _report


class FilterModule:
    def filters(self):
        return {"_status_table": _report.status_table, "_status_problems": _report.status_problems,
                "_rollback_report": _report.rollback_report, "_rollback_summary": _report.rollback_summary}
