# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This package is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""The datapath engine: compile, load, pin, attach, chain and record BPF programs.

Nothing in this package knows about Ansible; modules and action plugins hand
their arguments in and turn DatapathError into a failed task.
"""
