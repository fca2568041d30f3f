# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TC hook's decisions as tables: the filters observed at a hook in, the plan out; no root, no kernel."""
from types import SimpleNamespace

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.hooks import Request, hook_for
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.hooks.tc import plan_filters


def f(pref, handle, prog_id, kind="bpf", name=None):
    return {"pref": pref, "handle": handle, "prog_id": prog_id, "kind": kind, "name": name, "tag": "t%d" % prog_id}


OURS, OURS_ELSEWHERE, THEIRS = f(50, 1, 9), f(60, 1, 9), f(50, 2, 77, name="theirs")


@pytest.mark.parametrize("filters,own,expected", [
    ([], None, (None, [], [])),
    ([OURS], 9, (OURS, [], [])),
    ([OURS_ELSEWHERE], 9, (None, [OURS_ELSEWHERE], [])),
    ([OURS, THEIRS], 9, (OURS, [], [THEIRS])),
    ([THEIRS], None, (None, [], [THEIRS])),
])
def test_plan_filters(filters, own, expected):
    assert plan_filters(filters, own, "m", 50, 1) == expected


def test_a_filter_named_for_the_program_is_ours_when_its_pins_were_lost():
    lost = f(50, 1, 31, name="wirespeed:m")
    assert plan_filters([lost, THEIRS], None, "m", 50, 1) == (lost, [], [THEIRS])
    assert plan_filters([lost], None, "other", 50, 1) == (None, [], [lost])


def hook(force=False):
    return hook_for("tc")(Request("e0", "m", priority=50, attach={"direction": "ingress"}, force=force,
                                  bpffs="/nonexistent"))


def seen(filters, present=True, old_id=9):
    return SimpleNamespace(filters=filters, present=present, old_id=old_id,
                           old_fp={"tag": "t"} if old_id else None)


def loaded(tag="t"):
    return SimpleNamespace(fp={"tag": tag}, recreated=[], function="mirror")


def test_unchanged_when_the_same_program_runs_at_the_place():
    p = hook().plan(seen([OURS]), loaded(), None, "sha")
    assert not p.changed and p.steps == [] and p.result["prog_id"] == 9


def test_first_deploy_adds_clsact_then_the_filter():
    p = hook().plan(seen([], present=False, old_id=None), loaded(), None, "sha")
    assert p.steps == [("add_clsact",), ("set", False)]


def test_new_priority_sets_then_deletes_the_old_filter():
    p = hook().plan(seen([OURS_ELSEWHERE]), loaded(), None, "sha")
    assert p.steps == [("set", False), ("delete", OURS_ELSEWHERE)]


def test_a_foreign_filter_is_refused_without_force_and_replaced_with_it():
    with pytest.raises(DatapathError, match=r"priority 50 on e0 ingress is taken by filter 'theirs'"):
        hook().plan(seen([THEIRS], old_id=None), loaded(), None, "sha")
    p = hook(force=True).plan(seen([THEIRS], old_id=None), loaded(), None, "sha")
    assert p.steps == [("delete", THEIRS), ("set", False)]


def test_bad_requests_are_refused():
    with pytest.raises(DatapathError, match="direction 'sideways'"):
        hook_for("tc")(Request("e0", "m", attach={"direction": "sideways"}, bpffs="/nonexistent"))
    with pytest.raises(DatapathError, match="priority 0 must be"):
        hook_for("tc")(Request("e0", "m", priority=0, attach={"direction": "egress"}, bpffs="/nonexistent"))
    with pytest.raises(DatapathError, match=r"name .\.\./x. must start"):
        hook_for("tc")(Request("e0", "../x", attach={"direction": "egress"}, bpffs="/nonexistent"))
