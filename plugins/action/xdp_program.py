# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of xdp_program: compile on the controller, ship the program and the chain root."""

from __future__ import annotations

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._compile_action import CompileAction


class ActionModule(CompileAction):
    MODULE = "wirespeed.datapath.xdp_program"
    NEEDS_ROOT = True
