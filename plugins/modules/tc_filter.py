#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tc_filter
short_description: Deploy BPF programs at the TC clsact ingress or egress hook
version_added: 0.1.0
description:
  - Deploys one named BPF program (C(SEC("tc"))) as a direct-action C(cls_bpf) filter on the clsact
    qdisc of an interface, at a given priority (the filter's pref) and handle, as
    C(tc filter add dev IF ingress|egress pref P handle H bpf da obj ...) would.
  - Creates the clsact qdisc when it is missing, and removes it only when wirespeed created it and no
    filter is left on it. Filters added by other tools are never replaced or removed without O(force).
  - Replacing the program is one netlink request on the same pref and handle, which swaps the program
    atomically. Pinned maps are reused across versions when their definitions are unchanged and can be
    written with M(wirespeed.datapath.bpf_map_entry).
  - Whether anything changes is decided by observation, as in M(wirespeed.datapath.xdp_program); check
    mode runs the verifier unless O(verify=false).
  - Uses classic C(cls_bpf) rather than TCX (kernel 6.6+) on purpose, so the filters show in
    C(tc filter show) and order by pref beside the operator's own; a program that should let later
    filters run returns C(TC_ACT_UNSPEC).
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - Linux with BPF, the clsact qdisc and cls_bpf
  - libbpf 1.x and the Python library pyroute2 on the managed host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  interface:
    description: Network interface.
    type: str
    required: true
  direction:
    description: The clsact hook.
    type: str
    choices: [ingress, egress]
    required: true
  name:
    description: Name of this program on the interface (shared with XDP programs there); letters, digits, C(_), C(-).
    type: str
    required: true
  priority:
    description: The filter's pref; lower runs first.
    type: int
    default: 50
  handle:
    description: The filter's handle within its pref.
    type: int
    default: 1
  state:
    description: C(present) deploys the filter; C(absent) removes exactly the one deployed under O(name).
    type: str
    choices: [present, absent]
    default: present
  force:
    description: Replace (or with O(state=absent), remove) a filter another tool put at O(priority).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.action
  - wirespeed.datapath.program
  - wirespeed.datapath.program.paths
seealso:
  - module: wirespeed.datapath.xdp_program
  - module: wirespeed.datapath.bpf_map_entry
"""

EXAMPLES = r"""
- name: Mark traffic on the way out (the DSCP rules live in the program's map; see the dscp_marking role)
  wirespeed.datapath.tc_filter:
    interface: eth0
    direction: egress
    name: dscp-sip
    src: "{{ role_path }}/files/dscp_marking.bpf.c"
    priority: 10
    config:
      trust: true

- name: Remove it
  wirespeed.datapath.tc_filter:
    interface: eth0
    direction: egress
    name: dscp-sip
    priority: 10
    state: absent
"""

RETURN = r"""
prog_id:
  description: Kernel id of the program in the filter (null in check mode when it would change, and after removal).
  returned: always
  type: int
tag:
  description: Kernel tag of the program.
  returned: always
  type: str
direction:
  description: The hook.
  returned: always
  type: str
priority:
  description: The filter's pref.
  returned: when state is present
  type: int
handle:
  description: The filter's handle.
  returned: when state is present
  type: int
maps:
  description: Map name to pinned path.
  returned: always
  type: dict
maps_recreated:
  description:
    - Maps whose definition changed, so they were created anew; they were filled before the new version went
      live (see RV(maps_filled)).
  returned: when state is present
  type: list
  elements: str
maps_filled:
  description:
    - The maps this version creates anew (a changed definition or size), each with where its entries came from
      before the version went live (C(previous) - copied from the live map, converted where the layout
      changed; C(checkpoint) - from the checkpoint a rollback restores; C(entries) - asked for in the same call;
      C(empty) - a map that holds no data, such as a ring buffer) and how many it got. In check mode, what
      would be done.
  returned: when state is present and the program changes
  type: dict
  sample: {"deny_v4": {"from": "previous", "entries": 100000}}
map_sizes:
  description: The maps whose C(max_entries) this run changes (O(map_sizes)), with the size before and after.
  returned: when a size changes
  type: dict
  sample: {"deny_v4": {"before": 131072, "after": 262144}}
object_sha256:
  description: SHA-256 of the object deployed.
  returned: when state is present
  type: str
verified:
  description: Whether the program went through the verifier in this run.
  returned: when state is present
  type: bool
previous:
  description: The record of the version before this one, or null.
  returned: always
  type: dict
src:
  description: The O(src) as given in the task, when the program was compiled from source.
  returned: when O(src) is given
  type: str
  sample: files/drop_port.bpf.c
compiled_on:
  description:
    - Where the program was compiled - C(controller) (clang there, the object shipped), C(host) (sources shipped
      and compiled by the module), or null when nothing was compiled (a prebuilt O(object), or O(state=absent)).
    - Not set in the result of an C(async) task read back with C(async_status).
  returned: always
  type: str
  sample: controller
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
  description:
    - A stable name of the failure for playbooks to branch on, such as C(clang_missing).
  returned: failure, for failures that have a name
  type: str
  sample: clang_missing
"""

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import (
    PROGRAM_ARGUMENT_SPEC,
    DatapathModule,
    run_program,
)
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import hooks

TC = hooks.hook_for("tc").OPTIONS

ARGUMENT_SPEC = dict(
    PROGRAM_ARGUMENT_SPEC,
    interface=dict(type="str", required=True),
    direction=dict(type="str", choices=list(TC["directions"]), required=True),
    name=dict(type="str", required=True),
    priority=dict(type="int", default=TC["default_priority"]),
    handle=dict(type="int", default=TC["default_handle"]),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    force=dict(type="bool", default=False),
)


def run(params, check_mode, diff_mode):
    return run_program("tc", params, check_mode)


def main():
    DatapathModule(
        ARGUMENT_SPEC,
        mutually_exclusive=[("src", "object")],
        required_if=[("state", "present", ("src", "object"), True)],
    ).run(run)


if __name__ == "__main__":
    main()
