# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of datapath_apply: compile each distinct program once, ship each object once, pack long lists."""

from __future__ import annotations

import json

from ansible.plugins.action import ActionBase

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.apply import pack
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._compile_action import (
    CompileAction,
    both_given,
)
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._feeds import resolve

MODULE = "wirespeed.datapath.datapath_apply"
PACK_FROM = 256  # entries: a shorter list travels as it is (and reads as it is in -vvv)
SHIPPED = ("src", "object", "root_object", "root_src", "include_dirs")


def pack_maps(program: dict, packed: dict) -> None:
    """Replace each long plain list of keys (strings) by its packed form, and a feed reference by the feed's
    packed list; `packed` keeps the lists packed already (a feed on several programs is packed once)."""
    maps = []
    for given in program.get("maps") or []:
        spec = dict(given)
        feed = spec.pop("feed", None)
        entries = spec.get("entries")
        if feed is not None:  # a list the controller read, checked and packed once for every host (_feeds)
            spec["packed_entries"] = resolve(feed)
        elif isinstance(entries, list) and len(entries) >= PACK_FROM and all(isinstance(e, str) for e in entries):
            key = id(entries)
            if key not in packed:
                packed[key] = (entries, pack(entries))
            spec.pop("entries")
            spec["packed_entries"] = packed[key][1]
        maps.append(spec)
    if "maps" in program:
        program["maps"] = maps


class ActionModule(CompileAction):
    MODULE = MODULE

    def run(self, tmp=None, task_vars=None):
        result = ActionBase.run(self, tmp, task_vars)
        args = dict(self._task.args)
        programs = args.get("programs")
        if not isinstance(programs, list) or not all(isinstance(p, dict) for p in programs):
            result.update(failed=True, changed=False, msg="programs must be a list of programs, each a dict.")
            return result
        self._names, self._src = {}, None
        programs = [dict(p) for p in programs]
        built, packed = {}, {}

        def work():
            for i, program in enumerate(programs):
                refusal = both_given(MODULE, program)
                if refusal:
                    raise DatapathError(refusal)
                pack_maps(program, packed)
                if program.get("state", "present") != "present":
                    continue
                key = json.dumps([program.get(k) for k in ("hook", "src", "object", "defines", "include_dirs",
                                                           "compile_on", "clang")], sort_keys=True, default=str)
                if key not in built:
                    self.NEEDS_ROOT = program.get("hook", "xdp") == "xdp"
                    self._src, self._prefix = program.get("src"), "p%d-" % i
                    self._prepare(program)
                    built[key] = {k: program[k] for k in SHIPPED if k in program}
                program.update(built[key])
                program.pop("compile_on", None)
            args["programs"] = programs
            return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)

        module_result = self._run_reporting(result, work)
        if module_result is not None:
            result.update(module_result)
        return result

    def _shown_src(self):
        return self._src

    def _ship(self, local, name, shown=None):
        """Each program's object under its own name (the chain root and sources are the same for all)."""
        if name == "program.bpf.o":
            name = self._prefix + name
        return super()._ship(local, name, shown)
