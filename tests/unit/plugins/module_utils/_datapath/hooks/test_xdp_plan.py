# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The XDP hook's decisions as tables: observed chain in, slot, order and plan out; no root, no kernel."""
from types import SimpleNamespace

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.hooks import Request, hook_for
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.hooks.xdp import (
    HEAD,
    Slot,
    find_own,
    plan_chain,
    plan_frags,
    plan_slot,
    predecessor,
    resolve_mode,
)
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.record import Record

FW, SSH = Slot(0, 10, 100, "fw"), Slot(1, 20, 101, "ssh")
PLAIN = Slot(2, 30, 102, "plain", chain_aware=False)


@pytest.mark.parametrize("chain,name,record_id,expected", [
    ([FW, SSH], "ssh", None, SSH),
    ([FW, Slot(1, 20, 101, "slot1", pinned=False)], "ssh", 101, Slot(1, 20, 101, "slot1", pinned=False)),
    ([FW, SSH], "bl", 101, None),  # after a reboot ids start again: a pinned program is never taken for a lost one
    ([FW], "ssh", 555, None),
    ([], "fw", None, None),
])
def test_find_own(chain, name, record_id, expected):
    assert find_own(chain, name, record_id) == expected


@pytest.mark.parametrize("chain,own,priority,expected", [
    ([], None, 50, (0, False)),
    ([FW, SSH], SSH, 20, (1, True)),  # same priority: same slot, swapped in place
    ([FW, SSH], SSH, 5, (2, False)),  # new priority: a free slot, the old one removed after
    ([FW, SSH], None, 5, (2, False)),
])
def test_plan_slot(chain, own, priority, expected):
    assert plan_slot(chain, own, priority) == expected


def test_plan_slot_full_chain():
    full = [Slot(s, s, 1000 + s, "p%d" % s) for s in range(32)]
    with pytest.raises(DatapathError, match="all 32 chain slots"):
        plan_slot(full, None, 99)


def test_plan_chain_orders_by_priority_then_name():
    order = plan_chain([FW, SSH], None, Slot(2, 15, None, "wg"), "e0")
    assert [e.name for e in order] == ["fw", "wg", "ssh"]
    assert predecessor(order, "wg") == 0 and predecessor(order, "fw") == HEAD
    order = plan_chain([FW, SSH], SSH, Slot(2, 5, None, "ssh"), "e0")  # ssh moves to the front
    assert [e.name for e in order] == ["ssh", "fw"]


def test_plan_chain_refuses_a_program_after_a_plain_one():
    with pytest.raises(DatapathError, match=r"'plain' .* does not hand packets on .* 'late'"):
        plan_chain([FW, PLAIN], None, Slot(3, 40, None, "late"), "e0")
    assert [e.name for e in plan_chain([FW, PLAIN], None, Slot(3, 1, None, "first"), "e0")][-1] == "plain"


@pytest.mark.parametrize("requested,attached,ours,expected", [
    ("auto", None, False, "native"), ("auto", "generic", True, "generic"), ("auto", "native", False, "native"),
    ("generic", "native", True, "generic"),
])
def test_resolve_mode(requested, attached, ours, expected):
    assert resolve_mode(requested, attached, ours) == expected


def hook(**kw):
    return hook_for("xdp")(Request("e0", kw.pop("name", "ssh"), priority=kw.pop("priority", 20),
                                   attach={"mode": "auto"}, config={"ports": [22]}, bpffs="/nonexistent", **kw))


def seen(slots, old_prog_id=101, tag="old", ours=True):
    return SimpleNamespace(slots=slots, old_prog_id=old_prog_id, old_fp={"tag": tag} if old_prog_id else None,
                           xdp={"mode": "native", "prog_id": 7}, ours_attached=ours, orphan_root=False,
                           root_tag="r1", foreign=None, foreign_id=None)


def loaded(own, slot, in_place, fp_tag="old", root=False, recreated=(), program=True):
    return SimpleNamespace(own=own, slot=slot, in_place=in_place, mode="native",
                           fp={"tag": fp_tag} if program else None, chain_aware=True, root_tag="r1",
                           root=object() if root else None, recreated=list(recreated), function="ssh_limiter",
                           program=object() if program else None)


def test_plan_same_program_same_place_is_unchanged():
    p = hook().plan(seen([FW, SSH]), loaded(SSH, 1, True), None, "sha")
    assert not p.changed and p.steps == [] and p.result["prog_id"] == 101


def test_plan_new_program_same_priority_swaps_in_place():
    p = hook().plan(seen([FW, SSH]), loaded(SSH, 1, True, fp_tag="new"), None, "sha")
    assert p.changed and p.steps == [("swap", 1)] and p.after["chain"] == ["fw", "ssh"]


def test_plan_new_priority_inserts_then_removes_the_old_slot():
    p = hook(priority=5).plan(seen([FW, SSH]), loaded(SSH, 2, False), None, "sha")
    assert p.steps == [("insert", HEAD), ("remove", 1)] and p.after["chain"] == ["ssh", "fw"]


def test_plan_recreated_maps_count_as_a_change():
    assert hook().plan(seen([FW, SSH]), loaded(SSH, 1, True, recreated=["state"]), None, "sha").changed


def test_plan_orphan_whose_pins_were_deleted_is_replaced_in_its_slot():
    orphan = Slot(1, 20, 101, "slot1", pinned=False)
    p = hook().plan(seen([FW, orphan], old_prog_id=None), loaded(orphan, 1, True), None, "sha")
    assert p.changed and p.steps == [("swap", 1)] and p.after["chain"] == ["fw", "ssh"]


def test_plan_a_new_root_attaches():
    p = hook().plan(seen([FW, SSH]), loaded(SSH, 1, True, root=True), None, "sha")
    assert p.changed and p.steps == [("root", "native")]


def test_plan_in_check_mode_without_verify_trusts_the_record():
    rec = Record(hook="xdp", interface="e0", name="ssh", object_sha256="sha", config={"ports": [22]}, priority=20)
    unverified = loaded(SSH, 1, True, program=False)
    assert not hook().plan(seen([FW, SSH]), unverified, rec, "sha").changed
    assert hook().plan(seen([FW, SSH]), unverified, rec, "other").changed
    assert hook().plan(seen([FW, SSH]), loaded(SSH, 1, True, program=False, root=True), rec, "sha").changed


@pytest.mark.parametrize("mtu,mode,chain_frags,aware,expected", [
    (1500, "native", None, True, False),  # a page holds the frame: a single-buffer chain, as before
    (1500, "native", None, False, False),
    (3498, "native", None, False, False),
    (3499, "native", None, True, True),  # bigger than a page holds: the chain is built for multi-buffer packets
    (9000, "native", None, True, True),
    (9000, "generic", None, False, False),  # generic XDP gets a linear skb
    (9000, "native", True, True, True),
    (1500, "native", True, True, True),  # a chain keeps its flavour (the kernel's tail-call rule)
    (1500, "generic", False, False, False),
])
def test_plan_frags(mtu, mode, chain_frags, aware, expected):
    assert plan_frags(mtu, mode, chain_frags, aware, "eth0", "prog") is expected


@pytest.mark.parametrize("mtu,mode,chain_frags,aware,words", [
    (9000, "native", None, False, ["MTU 9000", "'prog'", 'SEC("xdp.frags")', "mode generic"]),
    (9000, "native", True, False, ["MTU 9000", "'prog'", 'SEC("xdp.frags")']),
    (1500, "native", True, False, ["built for multi-buffer packets", "'prog'", "deploy again"]),
    (9000, "native", False, True, ["MTU 9000", "single-buffer packets", "deploy them again"]),
])
def test_plan_frags_refuses_in_one_sentence(mtu, mode, chain_frags, aware, words):
    with pytest.raises(DatapathError) as err:
        plan_frags(mtu, mode, chain_frags, aware, "eth0", "prog")
    msg = err.value.message
    assert all(w in msg for w in words) and "eth0" in msg and msg.endswith(".") and ". " not in msg, msg
