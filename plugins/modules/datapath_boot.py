#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: datapath_boot
short_description: Make a host restore its confirmed wirespeed datapath at boot
version_added: 0.1.0
description:
  - bpffs lives in memory, so after a reboot no XDP or TC program runs and no map holds an entry. This
    module installs what brings them back before the network comes up - the host tool
    C(<state_dir>/lib/wirespeed.pyz) (this collection's engine as one zipapp, runnable without Ansible or
    the controller) and an enabled systemd unit, C(wirespeed-restore.service), ordered
    C(Before=network-pre.target), that runs C(wirespeed.pyz restore).
  - The restore re-applies C(<state_dir>/boot.json), the last confirmed datapath (see
    M(wirespeed.datapath.datapath_checkpoint)) - programs in chain order, modes, TC hooks and the contents of
    configuration maps; counters and rate-limit state start empty. It attaches at once to every device that
    exists and to each missing one the moment it appears - O(wait) seconds while C(network-pre.target) is still
    held, then, with the unit already started, until O(watch) seconds after boot (bonds, VLANs, WireGuard and
    VXLAN devices that the network configuration creates later). A device that never appears is reported in
    the journal, and the unit still ends green; it reports per program what it did, and is a no-op on a host
    that runs the datapath already.
  - Run by hand on the host with C(python3 /var/lib/wirespeed/lib/wirespeed.pyz restore).
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - Python 3 on the managed host (the interpreter Ansible uses runs the restore at boot)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  state:
    description: C(present) installs and enables the restore; C(absent) removes the unit and the host tool.
    type: str
    choices: [present, absent]
    default: present
  unit_dir:
    description: Where systemd units are installed; enabling is the C(multi-user.target.wants) link there.
    type: path
    default: /etc/systemd/system
  wait:
    description:
      - Seconds the restore holds C(network-pre.target) at boot for devices of the datapath that do not exist
        yet (a NIC whose driver is still probing); devices that exist are restored at once, whatever this is.
    type: int
    default: 5
  watch:
    description:
      - Seconds after boot during which devices that appear later (created by the network configuration after
        C(network-pre.target)) still get their programs, each as soon as it appears; boot does not wait for it.
        C(0) restores only what exists within O(wait).
    type: int
    default: 300
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.module
  - wirespeed.datapath.program.paths
"""

EXAMPLES = r"""
- name: Restore the confirmed datapath at boot
  wirespeed.datapath.datapath_boot:

- name: No more restore at boot
  wirespeed.datapath.datapath_boot:
    state: absent
"""

RETURN = r"""
tool:
  description: Path of the host tool.
  returned: state is present
  type: str
  sample: /var/lib/wirespeed/lib/wirespeed.pyz
unit:
  description: Path of the unit file.
  returned: state is present
  type: str
  sample: /etc/systemd/system/wirespeed-restore.service
enabled:
  description: Whether the restore runs at boot after the task.
  returned: always
  type: bool
removed:
  description: Files removed by C(state=absent).
  returned: state is absent
  type: list
  elements: str
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

import sys

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import PATHS_ARGUMENT_SPEC, DatapathModule
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.host import cli, restore

ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    state=dict(type="str", choices=["present", "absent"], default="present"),
    unit_dir=dict(type="path", default="/etc/systemd/system"),
    wait=dict(type="int", default=5),
    watch=dict(type="int", default=300),
)


def run(params, check_mode, diff_mode):
    if params["state"] == "absent":
        return restore.uninstall(params["state_dir"], unit_dir=params["unit_dir"], check_mode=check_mode)
    return restore.install(params["state_dir"], bpffs_path=params["bpffs"], unit_dir=params["unit_dir"],
                           python=sys.executable, wait=params["wait"], watch=params["watch"],
                           entry=cli.__name__,
                           check_mode=check_mode)


def main():
    DatapathModule(ARGUMENT_SPEC).run(run)


if __name__ == "__main__":
    main()
