#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: datapath_metrics
short_description: Export a host's datapath counters to Prometheus through node_exporter's textfile collector
version_added: 0.1.0
description:
  - Writes C(<dir>/wirespeed.prom) in the Prometheus text format - per interface and program, packets and bytes by
    action (pass, drop, aborted, tx, redirect) and, for drops, by reason (C(wirespeed_packets_total),
    C(wirespeed_bytes_total)), the entries and capacity of our pinned hash and LPM maps
    (C(wirespeed_map_entries), C(wirespeed_map_max_entries)), program sizes, run counts and run time while
    C(sysctl kernel.bpf_stats_enabled=1), unexpected generic mode, the number of problems
    M(wirespeed.datapath.datapath_info) would report, and when it was read.
  - The file is written whole to a temporary name and renamed, so node_exporter never reads half of it.
  - With O(timer=true) it also installs the host tool C(<state_dir>/lib/wirespeed.pyz), a oneshot
    C(wirespeed-metrics.service) that runs C(wirespeed.pyz metrics --dir <dir>) and an enabled
    C(wirespeed-metrics.timer) that runs it every O(interval) seconds.
  - C(changed) reports the units and the host tool only - refreshing the counters in the file is what the timer
    does every interval, not a change of the host.
author:
  - wirespeed.datapath contributors (@wirespeed)
requirements:
  - libbpf 1.x and pyroute2 on the managed host; node_exporter with C(--collector.textfile.directory=<dir>) to
    serve the file
attributes:
  check_mode:
    support: full
    details: Checks the directory and reports whether the units would change; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  dir:
    description: node_exporter's textfile directory. It must exist and be writable; nothing is created.
    type: path
    default: /var/lib/prometheus/node-exporter
  state:
    description: C(present) writes the file (and installs the timer); C(absent) removes the timer, its service and
      the file.
    type: str
    choices: [present, absent]
    default: present
  timer:
    description: Install and enable the systemd timer that refreshes the file.
    type: bool
    default: true
  interval:
    description: Seconds between two refreshes by the timer, 5 to 3600.
    type: int
    default: 60
  unit_dir:
    description: Where the systemd units go; enabling is the C(timers.target.wants) link there.
    type: path
    default: /etc/systemd/system
  generic_ok:
    description: Interfaces where XDP in generic mode is meant (not counted as a problem).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wirespeed.datapath.attributes
  - wirespeed.datapath.attributes.module
  - wirespeed.datapath.program.paths
"""

EXAMPLES = r"""
- name: Counters for node_exporter, refreshed every 30 seconds
  wirespeed.datapath.datapath_metrics:
    dir: /var/lib/prometheus/node-exporter
    interval: 30

- name: No more metrics
  wirespeed.datapath.datapath_metrics:
    state: absent
"""

RETURN = r"""
path:
  description: The metrics file written (not in check mode).
  returned: state is present and not check mode
  type: str
  sample: /var/lib/prometheus/node-exporter/wirespeed.prom
samples:
  description: How many samples the file holds.
  returned: state is present and not check mode
  type: int
  sample: 128
tool:
  description: Path of the host tool the timer runs.
  returned: state is present and timer is true
  type: str
  sample: /var/lib/wirespeed/lib/wirespeed.pyz
units:
  description: Paths of the service and timer unit files.
  returned: state is present and timer is true
  type: list
  elements: str
  sample: [/etc/systemd/system/wirespeed-metrics.service, /etc/systemd/system/wirespeed-metrics.timer]
removed:
  description: Files removed by O(state=absent).
  returned: state is absent
  type: list
  elements: str
"""

import sys

from ansible_collections.wirespeed.datapath.plugins.module_utils._base import PATHS_ARGUMENT_SPEC, DatapathModule
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.host import cli, metrics

ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    dir=dict(type="path", default=metrics.DEFAULT_DIR),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    timer=dict(type="bool", default=True),
    interval=dict(type="int", default=60),
    unit_dir=dict(type="path", default="/etc/systemd/system"),
    generic_ok=dict(type="list", elements="str", default=[]),
)


def run(params, check_mode, diff_mode):
    if params["state"] == "absent":
        return metrics.uninstall(params["dir"], unit_dir=params["unit_dir"], check_mode=check_mode)
    metrics.check_dir(params["dir"])
    metrics.check_interval(params["interval"])
    result = {"changed": False}
    if params["timer"]:
        result.update(metrics.install(params["dir"], state_dir=params["state_dir"], bpffs_path=params["bpffs"],
                                      unit_dir=params["unit_dir"], interval=params["interval"], python=sys.executable,
                                      generic_ok=params["generic_ok"], entry=cli.__name__,
                                      check_mode=check_mode))
    if not check_mode:
        text = metrics.collect(params["state_dir"], params["bpffs"], params["generic_ok"])
        result["path"] = metrics.write(params["dir"], text)
        result["samples"] = sum(1 for line in text.splitlines() if not line.startswith("#"))
    return result


def main():
    DatapathModule(ARGUMENT_SPEC).run(run)


if __name__ == "__main__":
    main()
