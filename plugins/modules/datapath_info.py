#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: datapath_info
short_description: Report the XDP datapath of a host's interfaces
version_added: 0.1.0
description:
  - For each interface, the attached XDP program (whether wirespeed attached it or not) and its mode,
    the wirespeed chain in the order packets walk it, every TC filter at the clsact ingress and egress
    hooks (wirespeed's and other tools'), each program's pinned maps, per-action packet and
    byte counters of programs that keep them (the C(ws_stats) map of C(wirespeed/stats.h)), and what
    the host's record says was deployed.
  - The health of each program - its XDP_ABORTED count, its size as the kernel runs it (xlated instructions,
    jited bytes, instructions the verifier walked) and, while C(sysctl kernel.bpf_stats_enabled=1), how often it
    ran and its average nanoseconds per run - and under C(problems) one sentence per thing that is wrong
    (packets that ended in XDP_ABORTED, XDP in generic mode on an interface whose driver runs it natively).
  - Everything it reports is also set as the fact C(wirespeed_datapath), for later tasks and fact caching.
  - Reads only; never changes anything.
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - libbpf 1.x and pyroute2 on the managed host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  interfaces:
    description:
      - Interfaces to report. Default is every interface of the host, and every interface in another network
        namespace that runs a program deployed with O(wirespeed.datapath.xdp_program#module:netns).
      - An interface in another namespace is written C(<netns>:<interface>), as the results name it.
    type: list
    elements: str
  host:
    description:
      - Also report what the host offers the datapath under C(host), for preflight checks of roles.
    type: bool
    default: false
  datapath:
    description:
      - Report the datapath of the interfaces under C(datapath). C(false) with O(host=true) reads only the
        host's facts, which is all a preflight needs.
    type: bool
    default: true
    version_added: 0.1.0
  health:
    description:
      - Also report the host's counters under C(health) - XDP_ABORTED and drops, in total and by reason, summed
        over every program the host runs, with the time they were read. Two readings give a drop rate; the
        staged rollout of C(site.yml) compares the rate before a change with the rate after it.
    type: bool
    default: false
    version_added: 0.1.0
  top_denied:
    description:
      - Also report, per program, the this many entries of its deny maps (hash or LPM maps named C(deny*) whose
        8-byte values count the packets each entry dropped, as the firewall keeps them) that dropped the most,
        under C(top_denied). C(0) skips reading them.
    type: int
    default: 0
    version_added: 0.1.0
  generic_ok:
    description:
      - Interfaces where XDP in generic mode is meant, so it is not reported under C(problems) even though
        their driver runs XDP natively.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.module
  - wirespeed.datapath.program.paths
"""

EXAMPLES = r"""
- name: Read the datapath of eth0
  wirespeed.datapath.datapath_info:
    interfaces: [eth0]
  register: dp

- name: Show packets dropped by the drop-port program
  ansible.builtin.debug:
    msg: "{{ dp.datapath.eth0.programs['drop-port'].counters.drop.packets }}"
"""

RETURN = r"""
datapath:
  description: Interface name to its XDP state.
  returned: unless datapath is false
  type: dict
  contains:
    ifindex:
      description: Interface index.
      type: int
    xdp_mode:
      description: Mode of the attached XDP program (native, generic, offload) or null.
      type: str
    xdp_health:
      description:
        - The attached XDP program's C(xlated_insns), C(jited_bytes), C(verified_insns), and while kernel BPF stats
          are on C(run_cnt) and C(avg_ns). For our chain this is the root, and its time per run is the whole
          chain's cost per packet - the kernel does not time tail-called programs on their own.
      type: dict
      version_added: 0.1.0
    xdp_generic_unexpected:
      description: Whether XDP runs in generic mode though the driver runs it natively (and the interface is not
        in O(generic_ok)).
      type: bool
      version_added: 0.1.0
    xdp_prog:
      description: Id, name and tag of the attached program, or null.
      type: dict
    managed:
      description: Whether the attached program is the wirespeed chain root.
      type: bool
    chain:
      description: The chain's programs in order, each with name, slot, priority, position and prog.
      type: list
      elements: dict
    tc:
      description:
        - Filters at the C(ingress) and C(egress) clsact hooks, each with pref, handle, kind, name, prog_id,
          tag, direct_action, and managed (whether wirespeed deployed it) with its program name.
      type: dict
    programs:
      description:
        - Program name to its hook, position or pref, pinned maps, counters by action, drops by reason, record
          and C(health).
        - With O(top_denied), C(top_denied) lists the deny entries that dropped the most, each with C(map),
          C(entry) (as people write it, C(203.0.113.7) or C(tcp/8080)) and C(packets); per-CPU hit counters
          are summed.
        - A firewall has C(prefilter), its IPv4 index in front of the deny lists, with C(generation) (0 means
          not in use, every packet takes the full lookups), C(covered) (every deny entry's /24 is marked; the
          next sync repairs it if not) and C(slots) (the /24s marked).
        - C(health) holds C(aborted) (XDP_ABORTED packets from the program's C(ws_stats), null without one),
          C(xlated_insns), C(jited_bytes), C(verified_insns), C(bpf_stats) (whether the kernel counts runs),
          C(run_cnt) and C(avg_ns) (nanoseconds per run; both null while kernel BPF stats are off).
        - C(xdp_owner) is null, or names who holds the XDP hook when the attached program is not wirespeed's -
          C(program), C(prog_id), C(mode), C(attached_by) (C(bpf_link) or C(netlink)), C(link_id) (the bpf_link
          holding it, found with BPF_LINK_GET_NEXT_ID), C(tool) (C(libxdp) for its C(xdp_dispatcher), C(cilium),
          C(bpfman), or null), C(pin) (where that tool pinned it, when found) and C(sentence) (who holds it and
          what to do). A deploy onto such an interface fails with that sentence before any change; the option
          O(wirespeed.datapath.xdp_program#module:force) never takes a bpf_link or another tool's program away.
        - A steering program (the af_xdp role's, with an C(xsk_queue_stats) map) has C(xsk_queues), one item per
          RX queue of the interface - C(queue), C(socket) (whether its XSKMAP holds an AF_XDP socket for the
          queue), C(bound) (AF_XDP sockets bound to the queue as the kernel's xdp_diag lists them, null when the
          kernel has no xdp_diag), C(redirected) and C(fallback) (matching packets that passed to the kernel
          because no socket was there).
      type: dict
  sample:
    eth0:
      ifindex: 2
      xdp_mode: native
      managed: true
      xdp_prog: {id: 41, name: wirespeed_root, tag: 0aaaaecf59886388}
      chain: [{name: drop-port, slot: 0, priority: 50, position: 0, prog: {id: 44, name: drop_port_prog}}]
problems:
  description:
    - One sentence per thing wrong with the datapath of the reported interfaces - a program with packets that
      ended in XDP_ABORTED, XDP in generic mode where the driver runs it natively (unless in O(generic_ok)).
      Empty when all is well.
  returned: unless datapath is false
  type: list
  elements: str
  sample: ["eth0/firewall: 12 packets ended in XDP_ABORTED, a program error (the xdp:xdp_exception tracepoint
    shows where)."]
  version_added: 0.1.0
healthy:
  description: Whether C(problems) is empty.
  returned: unless datapath is false
  type: bool
  version_added: 0.1.0
ansible_facts:
  description: The same data as a fact, for later tasks, C(--tree) and fact caching.
  returned: always
  type: dict
  contains:
    wirespeed_datapath:
      description: The keys this module returns - C(datapath), C(problems), C(healthy), C(host), C(health) - as far
        as the options asked for them.
      type: dict
  version_added: 0.1.0
health:
  description: The host's counters at one moment; only with O(health=true).
  returned: when health is true
  type: dict
  contains:
    at:
      description: When they were read, in seconds since the epoch.
      type: float
    aborted:
      description: XDP_ABORTED packets of every program of the host.
      type: int
    dropped:
      description: Packets dropped by every program of the host.
      type: int
    reasons:
      description: Packets dropped, by C(<interface>/<program>) C(<reason>), where programs count reasons.
      type: dict
    programs:
      description: How many programs were read.
      type: int
  sample: {at: 1796212800.5, aborted: 0, dropped: 1500, reasons: {"eth0/firewall: denied": 1500}, programs: 2}
host:
  description: What the host offers the datapath; only with I(host=true).
  returned: when host is true
  type: dict
  contains:
    kernel:
      description: Kernel release.
      type: str
    kernel_version:
      description: Major and minor version of the kernel.
      type: list
      elements: int
    bpffs:
      description: Path of the BPF filesystem, whether it is mounted, and whether it can be (the directory exists).
      type: dict
    btf:
      description: Whether the kernel exposes its BTF (/sys/kernel/btf/vmlinux).
      type: bool
    controller_address:
      description:
        - The address the SSH session running this module comes from (from C(SSH_CONNECTION), found up the
          process tree, so it survives become), or null for local connections.
      type: str
    interfaces:
      description:
        - Interface name to ifindex, kind (veth, bridge, vlan... or hardware), driver, xdp_native (true,
          false, or null when not known before attaching), xdp_offload, rx_queues (RX queues in use, from
          sysfs; null when not known) and xdp_owner (null, or who holds the XDP hook when wirespeed did not
          attach its program; as under RV(datapath)). The preflight fails on an interface whose xdp_owner is set.
      type: dict
  sample:
    kernel: 6.18.0-1-amd64
    controller_address: 198.18.7.1
    interfaces:
      eth0: {ifindex: 2, kind: veth, driver: null, xdp_native: true, xdp_offload: false, rx_queues: 1}
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

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import PATHS_ARGUMENT_SPEC, DatapathModule
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import facts, info
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError

ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    interfaces=dict(type="list", elements="str"),
    host=dict(type="bool", default=False),
    datapath=dict(type="bool", default=True),
    health=dict(type="bool", default=False),
    generic_ok=dict(type="list", elements="str", default=[]),
    top_denied=dict(type="int", default=0),
)


def run(params, check_mode, diff_mode):
    result = {"changed": False}
    if params["datapath"]:
        if not 0 <= params["top_denied"] <= 1000:
            raise DatapathError("top_denied %d must be from 0 to 1000." % params["top_denied"])
        result["datapath"] = info.gather(params["interfaces"], params["bpffs"], params["state_dir"],
                                         params["top_denied"])
        result["problems"] = info.problems(result["datapath"], info.native_support(), params["generic_ok"])
        result["healthy"] = not result["problems"]
    if params["host"]:
        result["host"] = facts.facts(params["bpffs"])
    if params["health"]:
        result["health"] = info.sample(params["state_dir"])
    result["ansible_facts"] = {"wirespeed_datapath": {k: v for k, v in result.items() if k != "changed"}}
    return result


def main():
    DatapathModule(ARGUMENT_SPEC).run(run)


if __name__ == "__main__":
    main()
