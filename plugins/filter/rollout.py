# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for site.yml's staged rollout: batch sizes, each host's health verdict, the batch's decision, the table."""

from __future__ import annotations

import yaml

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _rollout
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._input import filter_errors


@filter_errors
def rollout_batches(batches, fleet, variable="wirespeed_batches"):
    """The batches for a play's serial, or a one-sentence error naming the variable."""
    if isinstance(batches, str) and batches.strip().startswith("["):  # -e 'wirespeed_batches=[1, "10%"]' is a string
        try:
            batches = yaml.safe_load(batches)
        except yaml.YAMLError:
            pass  # refused below, by its own text
    return _rollout.parse_batches(batches, int(fleet), variable)


def rollout_problem(values, probe_is_file=False):
    """'' when site.yml's run variables are usable, else one sentence naming the first bad one."""
    return _rollout.problem(dict(values), bool(probe_is_file))


def health_verdict(bake, baseline=None, ceiling=None):
    """One host's verdict from its samples: bake = [right after the change, after the bake]; baseline = two
    samples before the change (or none); ceiling = allowed rise of drops per second (or none)."""
    return _rollout.judge(baseline=baseline or None, bake=bake,
                          ceiling=None if ceiling in (None, "") else float(ceiling))


def rollout_decision(hostvars, batch, active, staged=True):
    verdicts = {h: (hostvars.get(h) or {}).get("_wirespeed_verdict") for h in active}
    return _rollout.decide(verdicts, list(batch), list(active), bool(staged))


def rollout_outcome(decision, host, verdict=None, batch=1, taken_back=None, kept=None):
    return _rollout.outcome(verdict, decision, host, int(batch), taken_back=taken_back or None, kept=kept or None)


def rollout_table(hostvars, hosts):
    return _rollout.table(hostvars, list(hosts))


def rollout_waiting(hostvars, hosts):
    return _rollout.waiting(hostvars, list(hosts))


class FilterModule:
    def filters(self):
        return {"_rollout_batches": rollout_batches, "_rollout_problem": rollout_problem,
                "_health_verdict": health_verdict, "_rollout_decision": rollout_decision,
                "_rollout_outcome": rollout_outcome, "_rollout_table": rollout_table,
                "_rollout_waiting": rollout_waiting}
