#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xdp_program
short_description: Compile, verify, attach and chain XDP programs on an interface
version_added: 0.1.0
description:
  - Deploys one named XDP program on one interface. Several programs share an interface through the
    wirespeed chain, a small root program attached to the interface that hands each packet to the
    programs in order of O(priority) with tail calls.
  - Whether anything changes is decided by looking at the kernel. The requested program is loaded
    (which runs the verifier) and compared with the pinned one by kernel tag, live C(.rodata) and maps;
    slot, priority and attach mode are read back from the chain and netlink.
  - Replacing a program is one update of its chain slot, so no packet meets an interface without it.
    Maps pinned by the previous version are reused when their definitions are unchanged, so their
    entries and counters survive the upgrade.
  - A map whose definition changed (type, key or value size, flags, O(map_sizes)) is made before the old one
    is broken - created, then filled with the live map's entries (converted, for example from a hash to a
    per-CPU hash) while the old version keeps running on the old map, and only then swapped in. A map whose
    entries cannot be carried over (its key changed) fails the task and leaves the old version running.
  - A program that does not include C(wirespeed/chain.h) (a plain third-party XDP program) can be
    deployed too; it must be the last of the chain since it does not hand packets on.
  - With O(src), the action plugin compiles on the controller when clang is there and ships the object,
    so managed hosts need no compiler.
  - Pins live under C(<bpffs>/wirespeed/<interface>/<name>/) (C(prog) and C(maps/<map>)); what was deployed,
    and the version before it, is recorded in O(state_dir) for rollback.
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - Linux with BPF, XDP and bpffs (multi-program chains need 5.10 or later)
  - libbpf 1.x (C(libbpf1)) and the Python library pyroute2 on the managed host
  - clang on the controller or on the host when O(src) is used
attributes:
  check_mode:
    support: full
    details: Check mode loads the program to run the verifier (unless O(verify=false)), then unloads it.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  interface:
    description: Network interface to attach to.
    type: str
    required: true
  name:
    description:
      - Name of this program on the interface; it names the pin directory and identifies the program
        in later runs. Letters, digits, C(_) and C(-).
    type: str
    required: true
  mode:
    description:
      - XDP attach mode of the interface's chain root. C(auto) keeps the mode already in use, or tries
        C(native) and falls back to C(generic); the result says which.
      - Changing the mode of an interface that already runs a chain detaches and re-attaches the root,
        because the kernel cannot hold native and generic programs at once.
    type: str
    choices: [auto, native, generic, offload]
    default: auto
  netns:
    description:
      - Network namespace the interface is in, by name (under C(/run/netns), as C(ip netns add) makes it)
        or by absolute path (such as C(/proc/<pid>/ns/net)). Unset means the namespace Ansible runs in.
      - Only the netlink socket enters the namespace; pins stay in this host's O(bpffs), under
        C(wirespeed/<netns>:<interface>/), and the record keeps the program apart from an interface of the
        same name elsewhere, so checkpoints and rollback restore it in its namespace.
      - A namespace that does not exist fails the task before anything changes.
    type: str
    version_added: 0.2.0
  priority:
    description: Order in the chain; lower runs first. Ties are ordered by O(name).
    type: int
    default: 50
  state:
    description: C(present) deploys the program; C(absent) removes exactly what this module deployed under O(name).
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Replace (O(state=present)) or detach (O(state=absent)) an XDP program on the interface that
        wirespeed did not attach. Without it such a program is left alone and the task fails.
    type: bool
    default: false
  root_object:
    description: Compiled chain root on the host. Set by the action plugin; leave unset.
    type: path
  root_src:
    description:
      - Source of the chain root on the host, compiled there when O(root_object) is not given.
      - Set by the action plugin; leave unset.
    type: path
notes:
  - Replacing a program while traffic flows loses no packets; only a mode change has a gap.
  - Requires root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN for bpffs).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.action
  - wirespeed.datapath.program
  - wirespeed.datapath.program.paths
seealso:
  - module: wirespeed.datapath.datapath_info
"""

EXAMPLES = r"""
- name: Drop UDP to port 8080 on eth0, first in the chain
  wirespeed.datapath.xdp_program:
    interface: eth0
    name: drop-udp-8080
    src: "{{ role_path }}/files/drop_port.bpf.c"
    priority: 10
    config:
      drop_port: 8080
      drop_proto: 17

- name: Deploy a prebuilt third-party blocklist as the last program
  wirespeed.datapath.xdp_program:
    interface: eth0
    name: blocklist
    object: /opt/xdp/xdp_blocklist.bpf.o
    program: xdp_blocklist
    priority: 900

- name: A firewall sized for a large feed (its deny list is made anew, filled, then swapped in)
  wirespeed.datapath.xdp_program:
    interface: eth0
    name: firewall
    src: "{{ role_path }}/files/firewall.bpf.c"
    map_sizes:
      deny_v4: 1048576

- name: Remove it again
  wirespeed.datapath.xdp_program:
    interface: eth0
    name: blocklist
    state: absent
"""

RETURN = r"""
prog_id:
  description: Kernel id of the deployed program (null in check mode when it would change, and after removal).
  returned: always
  type: int
tag:
  description: Kernel tag of the program (hash of its instructions).
  returned: always
  type: str
mode:
  description: Actual XDP mode of the interface's chain root.
  returned: always
  type: str
  sample: native
priority:
  description: Priority of the program in the chain.
  returned: when state is present
  type: int
chain:
  description: Names of the programs on the interface in the order packets meet them, after the task.
  returned: always
  type: list
  elements: str
maps:
  description: Map name to pinned path.
  returned: always
  type: dict
  sample: {"blocklist": "/sys/fs/bpf/wirespeed/eth0/blocklist/maps/blocklist"}
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
  description: SHA-256 of the object file deployed.
  returned: when state is present
  type: str
verified:
  description: Whether the program went through the kernel verifier in this run.
  returned: when state is present
  type: bool
previous:
  description: The version recorded before this one (object hash, program, config, mode, priority), or null.
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
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.compile import object_for

XDP = hooks.hook_for("xdp").OPTIONS

ARGUMENT_SPEC = dict(
    PROGRAM_ARGUMENT_SPEC,
    interface=dict(type="str", required=True),
    name=dict(type="str", required=True),
    netns=dict(type="str"),
    mode=dict(type="str", choices=list(XDP["modes"]), default="auto"),
    priority=dict(type="int", default=XDP["default_priority"]),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    force=dict(type="bool", default=False),
    root_object=dict(type="path"),
    root_src=dict(type="path"),
)


def run(params, check_mode, diff_mode):
    root_object = params["root_object"]
    if params["state"] == "present" and not root_object:
        root_object = object_for(params["root_src"], None, params["include_dirs"], clang=params["clang"])
    return run_program("xdp", params, check_mode, objects={"root": root_object})


def main():
    DatapathModule(
        ARGUMENT_SPEC,
        mutually_exclusive=[("src", "object")],
        required_if=[("state", "present", ("src", "object"), True)],
    ).run(run)


if __name__ == "__main__":
    main()
