# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of tc_filter: compile on the controller and ship the object."""

from __future__ import annotations

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._compile_action import CompileAction


class ActionModule(CompileAction):
    MODULE = "wirespeed.datapath.tc_filter"
