#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flow_agent
short_description: Install the flow export agent of an interface as a systemd service
version_added: 0.1.0
description:
  - The flow export program (C(files/bpf/flow_export.bpf.c), deployed with M(wirespeed.datapath.xdp_program))
    aggregates flows in the kernel; its agent reads them - the per-CPU flow table, evicting flows idle for
    O(idle_timeout) or active for O(active_timeout) seconds, and the ring buffer that holds the flows the full table
    could not - and writes one JSON line per flow to O(output), rotated by size.
  - This module installs the host tool C(<state_dir>/lib/wirespeed.pyz) and an enabled unit
    C(wirespeed-flow-export-<interface>.service) that runs C(wirespeed.pyz flows --interface <interface> ...)
    (C(Restart=on-failure)); the agent keeps no state of its own, the flows stay in the pinned table across its
    restarts, and SIGTERM makes it write every flow still in the table before it stops.
  - Returns, and sets as the fact C(wirespeed_flow_export), what the agent last wrote about itself - flows
    exported, overflow records read, lines written, rotations - with the kernel's counters of full-table misses,
    failed ring buffer reservations, records sent and packets left out by sampling.
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - libbpf 1.x on the managed host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  interface:
    description: The interface whose flow export program the agent reads.
    type: str
    required: true
  name:
    description: The name the flow export program was deployed under.
    type: str
    default: flow_export
  state:
    description: C(present) installs and enables the agent's unit; C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  output:
    description:
      - The JSON lines file. Its directory is made (mode 0750) when its parent exists, as C(/var/log) does for
        the default; otherwise it must exist and be writable.
    type: path
    default: /var/log/wirespeed/flows.jsonl
  max_bytes:
    description: Size at which the output is rotated (C(<output>.1) ... ), 4096 or more.
    type: int
    default: 67108864
  backups:
    description: Rotated files kept, 1 to 100.
    type: int
    default: 5
  idle_timeout:
    description: Seconds without a packet after which a flow is exported and leaves the table.
    type: float
    default: 15
  active_timeout:
    description: Seconds after its first packet at which a flow still going is exported (and starts anew).
    type: float
    default: 60
  sample_rate:
    description: The program's C(sample_rate) (1 in N packets recorded), written into every record.
    type: int
    default: 1
  ipfix_collector:
    description:
      - Also send every flow as IPFIX (RFC 7011, templates of standard information elements, resent with every
        message) over UDP to this collector, C(address:port) or C([IPv6 address]:port).
    type: str
  unit_dir:
    description: The systemd unit directory; enabling is the C(multi-user.target.wants) link there.
    type: path
    default: /etc/systemd/system
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.module
  - wirespeed.datapath.program.paths
"""

EXAMPLES = r"""
- name: Export eth0's flows as JSON lines
  wirespeed.datapath.flow_agent:
    interface: eth0
    output: /var/log/wirespeed/flows-eth0.jsonl
    idle_timeout: 10
"""

RETURN = r"""
unit:
  description: Path of the agent's unit file.
  returned: state is present
  type: str
  sample: /etc/systemd/system/wirespeed-flow-export-eth0.service
tool:
  description: Path of the host tool the unit runs.
  returned: state is present
  type: str
  sample: /var/lib/wirespeed/lib/wirespeed.pyz
command:
  description: The agent's command line, as the unit runs it.
  returned: state is present
  type: list
  elements: str
removed:
  description: Files removed by O(state=absent).
  returned: state is absent
  type: list
  elements: str
ansible_facts:
  description: What the agent last wrote about itself.
  returned: always
  type: dict
  contains:
    wirespeed_flow_export:
      description:
        - Interface name to the agent's counters (flows_exported, overflow_records, lines_written, rotations) and the
          kernel's (table_full, ringbuf_failed, records_sent, sampled_out), with C(at), when they were written;
          null while the agent has not run.
      type: dict
"""

import sys

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import PATHS_ARGUMENT_SPEC, DatapathModule
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.host import cli, flows, tool

ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    interface=dict(type="str", required=True),
    name=dict(type="str", default="flow_export"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    output=dict(type="path", default="/var/log/wirespeed/flows.jsonl"),
    max_bytes=dict(type="int", default=64 << 20),
    backups=dict(type="int", default=5),
    idle_timeout=dict(type="float", default=15.0),
    active_timeout=dict(type="float", default=60.0),
    sample_rate=dict(type="int", default=1),
    unit_dir=dict(type="path", default="/etc/systemd/system"),
    ipfix_collector=dict(type="str"),
)


def run(params, check_mode, diff_mode):
    facts = {"ansible_facts": {"wirespeed_flow_export": {
        params["interface"]: flows.read_stats(params["state_dir"], params["interface"])}}}
    if params["state"] == "absent":
        return dict(flows.uninstall_agent(params["interface"], params["unit_dir"], check_mode), **facts)
    flows.check_settings(output=params["output"], idle=params["idle_timeout"], active=params["active_timeout"],
                         max_bytes=params["max_bytes"], backups=params["backups"], sample_rate=params["sample_rate"],
                         ipfix=params["ipfix_collector"])
    made = flows.output_dir(params["output"], create=not check_mode)
    installed = tool.install(params["state_dir"], entry=cli.__name__, check_mode=check_mode, python=sys.executable)
    argv = flows.agent_argv(python=sys.executable, tool_file=installed["path"], interface=params["interface"],
                            name=params["name"], output=params["output"], state_dir=params["state_dir"],
                            bpffs_path=params["bpffs"], idle=params["idle_timeout"], active=params["active_timeout"],
                            max_bytes=params["max_bytes"], backups=params["backups"],
                            sample_rate=params["sample_rate"], ipfix=params["ipfix_collector"])
    unit = flows.install_agent(argv, params["interface"], params["unit_dir"], check_mode)
    return dict(facts, changed=made or installed["changed"] or unit["changed"], unit=unit["unit"],
                tool=installed["path"], command=argv, output_dir_created=made)


def main():
    DatapathModule(ARGUMENT_SPEC).run(run)


if __name__ == "__main__":
    main()
