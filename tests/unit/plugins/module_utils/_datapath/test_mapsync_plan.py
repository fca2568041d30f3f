# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The map sync plan as a table: current and wanted bytes in, add/update/remove out; no root, no kernel."""
import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.mapsync import plan_keys, plan_sync

Z = b"\0\0"
A, B, C = b"a", b"b", b"c"


@pytest.mark.parametrize("current,wanted,given,kw,expected", [
    ({}, {A: None}, False, {}, ({A: Z}, {}, {})),
    ({A: Z}, {A: None}, False, {}, ({}, {}, {})),
    ({A: Z, B: Z}, {A: None}, False, {"exclusive": True}, ({}, {}, {B: Z})),
    ({A: Z}, {A: None, B: None}, False, {"exclusive": True}, ({B: Z}, {}, {})),
    ({A: b"\x01\0"}, {A: b"\x02\0"}, True, {}, ({}, {A: (b"\x01\0", b"\x02\0")}, {})),
    ({A: b"\x01\0"}, {B: b"\x02\0", A: None}, True, {}, ({B: b"\x02\0"}, {}, {})),
    ({A: Z, B: Z}, {A: None, C: None}, False, {"state": "absent"}, ({}, {}, {A: Z})),
    # arrays: every index exists; resetting one that is blank already changes nothing
    ({A: Z, B: b"\x05\0"}, {}, False, {"exclusive": True, "array": True}, ({}, {}, {B: b"\x05\0"})),
])
def test_plan_sync(current, wanted, given, kw, expected):
    assert plan_sync(current, wanted, given, Z, **kw) == expected


def test_check_mode_unpinned_map_is_information_not_a_warning(tmp_path):
    """A first preview finds no pinned map: the entries are shown as given, said once, and not as a warning."""
    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync
    result = mapsync.sync(str(tmp_path / "maps" / "deny_v4"), entries=["192.0.2.1", "192.0.2.2"], check_mode=True)
    assert "warnings" not in result
    assert result["pinned"] is False and result["changed"] and result["added"] == 2
    assert "not pinned yet" in result["msg"] and "deny_v4" in result["msg"]
    specs = [{"map": "deny_v4", "entries": ["192.0.2.1"]}, {"map": "deny_v6", "entries": ["2001:db8::1"]}]
    both = mapsync.sync_all(specs, interface="eth0", name="firewall", bpffs_path=str(tmp_path), check_mode=True,
                            diff=False)
    assert "warnings" not in both and all("warnings" not in m and "msg" in m for m in both["maps"].values())
    assert both["msg"].count("not pinned yet") == 1 and "deny_v4, deny_v6" in both["msg"]


@pytest.mark.parametrize("current,wanted,kw,expected", [
    ([], {A}, {}, ({A}, set())),
    ([A], {A}, {"exclusive": True}, (set(), set())),
    ([A, B], {A}, {"exclusive": True}, (set(), {B})),
    ([A, B], {A}, {}, (set(), set())),
    ([A], {B, C}, {"exclusive": True}, ({B, C}, {A})),
    ([A, B], {A, C}, {"state": "absent"}, (set(), {A})),
])
def test_plan_keys_agrees_with_plan_sync(current, wanted, kw, expected):
    """A list without values is planned on sets: the same change as plan_sync makes on dicts."""
    assert plan_keys(current, wanted, **kw) == expected
    add, _update, remove = plan_sync(dict.fromkeys(current, Z), dict.fromkeys(wanted), False, Z, **kw)
    assert (set(add), set(remove)) == expected
