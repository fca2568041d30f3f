# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter of site.yml's no-op fast path: the digest of what a run asks of one host (plugin_utils/_intent.py)."""

from __future__ import annotations

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _intent


class FilterModule:
    def filters(self):
        return {"_intent": _intent.intent}
