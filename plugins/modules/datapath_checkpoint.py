#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: datapath_checkpoint
short_description: Checkpoint a host's wirespeed datapath around a change, and roll back to it
version_added: 0.1.0
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
  - B(Commit-confirmed.) C(step=begin) with O(confirm_timeout) also arms a timer on the host itself (a
    transient systemd timer where systemd runs, a detached watchdog process otherwise) that does not depend
    on the SSH session. Unless C(step=confirm) arrives before it expires, the host rolls back by itself to
    the checkpoint begin took (programs, attachments and configuration maps) and records why; a later
    C(step=confirm) then fails with that reason. Run the confirm over a fresh connection
    (C(ansible.builtin.meta) C(reset_connection) first), so that it proves the controller still reaches the host.
  - C(step=confirm) refuses, and rolls back at once, when XDP_ABORTED counters rose since begin. With
    nothing armed it reports C(changed=false).
  - C(step=abort) takes the change waiting for its confirm back at once (for example when an operator's health
    probe failed); when the host already rolled it back by itself it reports that. For a run begun without
    O(confirm_timeout) it takes back what changed since that begin (a staged rollout's failed batch). It never goes
    further back than the run's begin.
  - B(Boot datapath.) A successful C(step=commit) without a pending confirm, a C(step=confirm) and a
    C(step=rollback) make the datapath as it then is the one the host restores at boot
    (C(<state_dir>/boot.json); see the C(wirespeed.datapath.persistence) role). A run that failed half-way,
    or a change that was never confirmed, does not.
  - While a change waits for its confirm, another C(step=begin) is refused with the time left.
  - C(step=compare) with O(intent) only reads; it reports C(converged=true) when the datapath is still exactly
    as the last run of that intent left it, so that C(site.yml) can skip the host's roles.
  - The playbooks C(site.yml) and C(rollback.yml) of this collection use it; begin, commit and confirm report
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
    choices: [begin, commit, confirm, abort, rollback, compare]
  confirm_timeout:
    description:
      - With C(step=begin), arm a commit-confirmed change - seconds (1 to 86400) within which
        C(step=confirm) must arrive, or the host rolls the change back by itself. 120 suits most fleets.
      - Needs Python on the host to run the host tool it installs at C(<state_dir>/lib/wirespeed.pyz).
    type: int
    version_added: 0.1.0
  rollback_to:
    description: With C(step=rollback), go back to the datapath before the last change, or to none at all.
    type: str
    choices: [previous, none]
    default: previous
  intent:
    description:
      - With C(step=compare), C(step=begin), C(step=commit) or C(step=confirm), a digest of everything the run
        asks of this host (C(site.yml) computes it from the roles' variables, their files and the collection's
        code).
      - C(step=commit) and C(step=confirm) remember it with a fingerprint of the datapath the run left (program
        ids and attachments, map contents, the controller's address). C(step=begin) with the same intent reports
        C(converged=true) when the datapath still matches that fingerprint exactly, and then writes nothing and
        arms nothing; the run has nothing to do on this host. Any drift (a program replaced or detached, a map
        entry changed, an interface re-created) or any other intent makes it C(false).
    type: str
    version_added: 0.1.0
  reason:
    description:
      - With C(step=abort), why the change is taken back, kept in the message (for example the failed health check).
    type: str
    version_added: 0.1.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.module
  - wirespeed.datapath.program.paths
"""

EXAMPLES = r"""
- name: Record the datapath before the roles change it
  wirespeed.datapath.datapath_checkpoint:
    step: begin

- name: Keep the record if the run changed something
  wirespeed.datapath.datapath_checkpoint:
    step: commit

- name: Arm - unless confirmed within 120 s, the host takes the change back by itself
  wirespeed.datapath.datapath_checkpoint:
    step: begin
    confirm_timeout: 120

- name: A fresh connection proves the host is still reachable after the change
  ansible.builtin.meta: reset_connection

- name: Keep the change (and make it the datapath restored at boot)
  wirespeed.datapath.datapath_checkpoint:
    step: confirm

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
checkpoint:
  description: With begin and commit, the digest of the datapath as it is (programs, objects, config and maps).
  returned: step is begin or commit
  type: str
  sample: 3f2a9c01b2de44d1
recorded_unfinished_run:
  description: With begin (not in check mode), whether an earlier run that never committed was kept as a checkpoint.
  returned: step is begin, not in check mode
  type: bool
confirm_timeout:
  description: With begin, the O(confirm_timeout) the change was armed with.
  returned: step is begin and confirm_timeout is set
  type: int
deadline:
  description: With begin and O(confirm_timeout), when the host rolls the change back unless confirmed (UTC).
  returned: step is begin and confirm_timeout is set, not in check mode
  type: str
  sample: "2026-01-31T12:00:00Z"
check_mode:
  description: With rollback, whether the task ran in check mode (so C(actions) are what it would do).
  returned: step is rollback and there was something to roll back to
  type: bool
programs:
  description: With begin and commit, one line per program of the datapath as it is.
  returned: step is begin or commit
  type: list
  elements: str
recorded:
  description: With commit, whether the run changed the datapath, so its begin checkpoint was kept.
  returned: step is commit
  type: bool
boot_datapath_updated:
  description: With commit and confirm, whether the datapath restored at boot changed.
  returned: step is commit or confirm
  type: bool
armed:
  description: With begin and O(confirm_timeout), whether the host's rollback timer was armed (not in check mode).
  returned: step is begin and confirm_timeout is set
  type: bool
timer:
  description: With begin and O(confirm_timeout), C(systemd) (a transient timer) or C(process) (a watchdog).
  returned: step is begin and confirm_timeout is set, not in check mode
  type: str
converged:
  description:
    - With begin or compare and an O(intent), whether the datapath is still exactly as the last run of that intent
      left it.
  returned: step is begin or compare
  type: bool
confirmed:
  description: With confirm, whether a waiting change was confirmed.
  returned: step is confirm
  type: bool
rolled_back:
  description: With abort, whether the run's change was rolled back (now, or earlier by the host itself).
  returned: step is abort
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
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.host import cli, confirm

ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    step=dict(type="str", required=True, choices=["begin", "commit", "confirm", "abort", "rollback", "compare"]),
    rollback_to=dict(type="str", choices=["previous", "none"], default="previous"),
    confirm_timeout=dict(type="int"),
    reason=dict(type="str"),
    intent=dict(type="str"),
)


def run(params, check_mode, diff_mode):
    if params["confirm_timeout"] is not None and params["step"] != "begin":
        raise DatapathError("confirm_timeout goes with step=begin only (got step=%s); remove it from this task."
                            % params["step"])
    if params["step"] == "begin":
        return confirm.begin(params["state_dir"], bpffs_path=params["bpffs"], timeout=params["confirm_timeout"],
                             check_mode=check_mode, intent=params["intent"], entry=cli.__name__)
    if params["step"] == "commit":
        return checkpoint.commit(params["state_dir"], check_mode, intent=params["intent"], bpffs_path=params["bpffs"])
    if params["step"] == "confirm":
        return confirm.confirm(params["state_dir"], bpffs_path=params["bpffs"], check_mode=check_mode,
                               intent=params["intent"])
    if params["step"] == "compare":
        return checkpoint.compare(params["intent"], params["state_dir"], params["bpffs"])
    if params["step"] == "abort":
        return confirm.abort(params["state_dir"], bpffs_path=params["bpffs"], reason=params["reason"],
                             check_mode=check_mode)
    return checkpoint.rollback(params["rollback_to"], params["bpffs"], params["state_dir"], check_mode)


def main():
    DatapathModule(ARGUMENT_SPEC).run(run)


if __name__ == "__main__":
    main()
