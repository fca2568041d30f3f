# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes every module of the collection shares; ACTION for the modules with an action plugin, MODULE for
    the others. check_mode, diff_mode and platform stay in each module (they differ)."""

    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/wirespeed.datapath.datapath) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - wirespeed.datapath.datapath
  async:
    description: Supports being used with the C(async) keyword.
    support: full
  bypass_host_loop:
    description: Runs per host, like most modules.
    support: none
"""

    ACTION = r"""
attributes:
  action:
    description: Has an action plugin, which runs parts of the task on the controller.
    support: full
    details: Compiles the C(src) of a program on the controller when clang is there, and ships the objects to the host.
"""

    MODULE = r"""
attributes:
  action:
    description: Has an action plugin, which runs parts of the task on the controller.
    support: none
"""
