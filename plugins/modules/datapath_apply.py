#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: datapath_apply
short_description: Every program and every map of a host in one call, under one host lock
version_added: 0.1.0
description:
  - Deploys (or removes) several XDP and TC programs and syncs their maps in one module call, as
    M(wirespeed.datapath.xdp_program), M(wirespeed.datapath.tc_filter) and the
    O(wirespeed.datapath.bpf_map_entry#module:maps) option of M(wirespeed.datapath.bpf_map_entry) do one at a time.
    The datapath roles use it for their programs, and C(site.yml) gathers the programs of every role of a host
    into one call.
  - The action plugin compiles each distinct source once on the controller and ships each object once, and sends
    a long list of map entries packed rather than as a JSON list (compressed when that pays, base64, with its
    sha256). A feed's addresses and networks travel as the map's own key bytes, which the host hands to the kernel
    without parsing an entry; any other long list travels as its text, one entry a line.
  - Every packed list is unpacked and checked against its digest before the first program or map is touched;
    a transfer that arrives damaged fails the task and changes nothing.
  - Programs are applied in the order given, each followed by its maps; a failure stops the call there, and the
    run's checkpoint (M(wirespeed.datapath.datapath_checkpoint)) takes the host back.
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - Linux with BPF, XDP, TC clsact and bpffs; libbpf 1.x and pyroute2 on the managed host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: One diff per program (by name and interface) and one per map, as the single-program modules show them.
  platform:
    platforms: posix
options:
  programs:
    description:
      - The programs, each a dict of the options of M(wirespeed.datapath.xdp_program) (C(hook=xdp)) or
        M(wirespeed.datapath.tc_filter) (C(hook=tc)), such as C(name), C(src), C(mode), C(priority),
        C(config), C(defines) and C(state), plus the keys below.
      - C(hook) is C(xdp) (the default) or C(tc).
      - C(interface) names one interface; C(interfaces), a list, deploys the same program on each.
      - For TC, C(direction) is C(ingress) or C(egress); C(directions), a list, deploys the program once per
        direction named C(<name>_<direction>), and C(absent_directions) removes those of the other directions.
      - C(maps) lists the program's maps as O(wirespeed.datapath.bpf_map_entry#module:maps) takes them (C(map),
        C(entries), C(key_type), C(value_type), C(exclusive), C(state), C(allow_empty), C(allow_empty_var)), plus
        C(direction) (the map belongs to
        that direction's program only) and C(packed_entries) (set by the action plugin).
    type: list
    elements: dict
    required: true
notes:
  - Requires root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN for bpffs).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.action
  - wirespeed.datapath.program.paths
seealso:
  - module: wirespeed.datapath.xdp_program
  - module: wirespeed.datapath.tc_filter
  - module: wirespeed.datapath.bpf_map_entry
"""

EXAMPLES = r"""
- name: A firewall on two interfaces and its deny lists, in one call
  wirespeed.datapath.datapath_apply:
    programs:
      - name: firewall
        interfaces: [eth0, eth1]
        src: firewall.bpf.c
        priority: 10
        maps:
          - {map: deny_v4, key_type: ipv4, entries: "{{ lookup('ansible.builtin.file', 'feed.txt').splitlines() }}",
             exclusive: true}

- name: A mirror of both directions of eth0 to eth9
  wirespeed.datapath.datapath_apply:
    programs:
      - name: mirror
        hook: tc
        interface: eth0
        directions: [ingress, egress]
        src: mirror.bpf.c
        maps:
          - {map: target, key_type: u32, value_type: ifindex, entries: [{key: 0, value: eth9}], exclusive: true}
"""

RETURN = r"""
programs:
  description:
    - One result per program (per interface and direction), in the order applied, with the keys
      M(wirespeed.datapath.xdp_program) or M(wirespeed.datapath.tc_filter) return, plus C(name), C(interface),
      C(direction) and C(maps_synced) (the result of each map by name, as
      O(wirespeed.datapath.bpf_map_entry#module:maps) returns it).
  returned: always
  type: list
  elements: dict
detail:
  description: Compiler output, the tail of the verifier log or the kernel's words, when the task failed on one of them.
  returned: failure, when there is such output
  type: str
detail_lines:
  description: The same as RV(detail), one line per list item, for reading in the task output.
  returned: failure, when there is such output
  type: list
  elements: str
error_code:
  description: A stable name of the failure for playbooks to branch on, such as C(clang_missing).
  returned: failure, for failures that have a name
  type: str
"""

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import (
    PATHS_ARGUMENT_SPEC,
    PROGRAM_ARGUMENT_SPEC,
    DatapathModule,
    run_program,
)
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import apply, hooks
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.compile import object_for
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types.codecs import TYPE_NAMES

XDP = hooks.options("xdp")
TC = hooks.options("tc")

MAP_SPEC = dict(
    map=dict(type="str", required=True),
    entries=dict(type="raw"),
    packed_entries=dict(type="dict"),
    key_type=dict(type="str", choices=TYPE_NAMES, no_log=False),
    value_type=dict(type="str", choices=TYPE_NAMES),
    exclusive=dict(type="bool", default=False),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    direction=dict(type="str", choices=list(TC["directions"])),
    allow_empty=dict(type="bool", default=True),
    allow_empty_var=dict(type="str"),
)

PROGRAM_SPEC = dict(
    {k: v for k, v in PROGRAM_ARGUMENT_SPEC.items() if k not in PATHS_ARGUMENT_SPEC},
    hook=dict(type="str", choices=["xdp", "tc"], default="xdp"),
    interface=dict(type="str"),
    interfaces=dict(type="list", elements="str"),
    name=dict(type="str", required=True),
    netns=dict(type="str"),
    mode=dict(type="str", choices=list(XDP["modes"]), default="auto"),
    priority=dict(type="int"),
    handle=dict(type="int", default=TC["default_handle"]),
    direction=dict(type="str", choices=list(TC["directions"])),
    directions=dict(type="list", elements="str", choices=list(TC["directions"])),
    absent_directions=dict(type="list", elements="str", choices=list(TC["directions"])),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    force=dict(type="bool", default=False),
    root_object=dict(type="path"),
    root_src=dict(type="path"),
    maps=dict(type="list", elements="dict", options=MAP_SPEC, default=[]),
)

ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    programs=dict(type="list", elements="dict", required=True),
)

VALIDATOR = ArgumentSpecValidator(PROGRAM_SPEC, mutually_exclusive=[("src", "object"), ("interface", "interfaces")])


def checked(programs: list) -> list:
    """Each program's options checked and completed with their defaults, as the single-program modules do."""
    out = []
    for i, program in enumerate(programs, 1):
        result = VALIDATOR.validate(program)
        if result.error_messages:
            raise DatapathError("programs item %d (%s): %s; fix it in the task." % (
                i, program.get("name", "without a name"), result.error_messages[0].rstrip(".")))
        one = result.validated_parameters
        if one["priority"] is None:
            one["priority"] = (XDP if one["hook"] == "xdp" else TC)["default_priority"]
        if one["state"] == "present" and not (one["src"] or one["object"]):
            raise DatapathError("programs item %d (%s) has neither src nor object; give one of them."
                                % (i, one["name"]))
        if one["hook"] == "tc" and not (one["direction"] or one["directions"] or one["absent_directions"]):
            raise DatapathError("programs item %d (%s) is a TC program without a direction; give direction "
                                "(ingress or egress) or directions." % (i, one["name"]))
        out.append(one)
    return out


def run(params, check_mode, diff_mode):
    paths = {"bpffs": params["bpffs"], "state_dir": params["state_dir"]}
    roots = {}  # the chain root compiled on the host once, for every XDP program of the call

    def deploy(program):
        program = dict(program, **paths)
        objects = None
        if program["hook"] == "xdp" and program["state"] == "present":
            root = program["root_object"]
            if not root:
                key = program["root_src"]
                if key not in roots:
                    roots[key] = object_for(key, None, program["include_dirs"], clang=program["clang"])
                root = roots[key]
            objects = {"root": root}
        # a map the new version must create anew is filled from the whole list the same call asks for, before the
        # version goes live (make before break)
        entries = {m["map"]: {"entries": m.get("entries") or [], "keys": m.get("keys"), "key_type": m.get("key_type"),
                              "value_type": m.get("value_type")}
                   for m in program["maps"] if m.get("exclusive") and m.get("state") == "present"}
        return run_program(program["hook"], program, check_mode, objects=objects, entries=entries or None)

    return apply.apply(checked(params["programs"]), deploy, bpffs_path=params["bpffs"],
                       state_dir=params["state_dir"], check_mode=check_mode, diff=diff_mode)


def main():
    DatapathModule(ARGUMENT_SPEC).run(run)


if __name__ == "__main__":
    main()
