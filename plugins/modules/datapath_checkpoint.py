#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: datapath_checkpoint
short_description: Checkpoint a host's wirespeed datapath around a change, and roll back to it
version_added: 0.2.0
description:
  - A checkpoint is every program this collection runs on the host (stored object, config, priority, XDP
    mode or TC hook) and the contents of its maps. Counters are not part of it (per-CPU and LRU maps are
    skipped; for hash and LPM maps the set of keys counts, not the hit counts in their values).
  - C(step=begin) records the datapath as it is before a run's changes; C(step=commit), at the end of
    the run, keeps that record as "the datapath before the last change" only if the run changed
    something. A run that failed in between is noticed by the next begin or rollback.
  - C(step=rollback) with C(rollback_to=previous) brings back the datapath before the last change,
    programs and map contents, and forgets that checkpoint, so calling it again goes one more change back
    (the host keeps 10). With C(rollback_to=none) it removes every program this collection attached and
    leaves other tools' programs alone; what it removed is recorded, so a later rollback restores it.
  - The playbooks C(site.yml) and C(rollback.yml) of this collection use it; begin and commit report
    C(changed=false) because they do not change the datapath.
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - libbpf 1.x and pyroute2 on the managed host
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  step:
    description: What to do.
    type: str
    required: true
    choices: [begin, commit, rollback]
  rollback_to:
    description: With C(step=rollback), go back to the datapath before the last change, or to none at all.
    type: str
    choices: [previous, none]
    default: previous
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.program.paths
"""

EXAMPLES = r"""
- name: Record the datapath before the roles change it
  wirespeed.datapath.datapath_checkpoint:
    step: begin

- name: Keep the record if the run changed something
  wirespeed.datapath.datapath_checkpoint:
    step: commit

- name: Take the host back one change
  wirespeed.datapath.datapath_checkpoint:
    step: rollback
  register: back

- name: Remove everything wirespeed attached
  wirespeed.datapath.datapath_checkpoint:
    step: rollback
    rollback_to: none
"""

RETURN = r"""
programs:
  description: With begin and commit, one line per program of the datapath as it is.
  returned: step is begin or commit
  type: list
  elements: str
recorded:
  description: With commit, whether the run changed the datapath, so its begin checkpoint was kept.
  returned: step is commit
  type: bool
restored:
  description: With rollback, when the restored checkpoint was taken, C(none), or null when there was none.
  returned: step is rollback
  type: str
before:
  description: With rollback, one line per program before it.
  returned: step is rollback
  type: list
  elements: str
after:
  description: With rollback, one line per program after it.
  returned: step is rollback
  type: list
  elements: str
actions:
  description: With rollback, each deploy, map restore and removal it made (or would make in check mode).
  returned: step is rollback
  type: list
  elements: str
  sample: ["deploy eth0/firewall (object 3f2a9c01b2de, priority 10)", "maps of eth0/firewall: deny_v4 +0 -1"]
"""

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import PATHS_ARGUMENT_SPEC, DatapathModule
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint

ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    step=dict(type="str", required=True, choices=["begin", "commit", "rollback"]),
    rollback_to=dict(type="str", choices=["previous", "none"], default="previous"),
)


def run(params, check_mode, diff_mode):
    if params["step"] == "begin":
        return checkpoint.begin(params["state_dir"], check_mode)
    if params["step"] == "commit":
        return checkpoint.commit(params["state_dir"], check_mode)
    return checkpoint.rollback(params["rollback_to"], params["bpffs"], params["state_dir"], check_mode)


def main():
    DatapathModule(ARGUMENT_SPEC).run(run)


if __name__ == "__main__":
    main()
