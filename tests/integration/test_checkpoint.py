# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checkpoints and rollback on a real kernel: programs and map contents come back, proven by packets."""

import ipaddress
import os
import shutil
import struct

from conftest import BPF
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel.maps import PinnedMap


def ckpt(dut, step, **kw):
    with netns(dut.dut):
        if step == "rollback":
            return checkpoint.rollback(kw.get("to", "previous"), dut.bpffs, dut.state_dir, kw.get("check", False))
        return getattr(checkpoint, step)(dut.state_dir, kw.get("check", False))


def block(dut, addresses):
    path = os.path.join(dut.pin_root, "bl", "maps", "blocklist")
    return mapsync.sync(path, entries=addresses, key_type="ipv4", exclusive=True)


def deny_keys(dut):
    with PinnedMap(os.path.join(dut.pin_root, "bl", "maps", "blocklist")) as m:
        return sorted(str(ipaddress.IPv4Address(k)) for k in m.dump())


def verdicts(dut):
    """{port: datagrams of 10 that arrived} for the ports the tests' programs look at."""
    return {port: dut.udp(port, 10) for port in (7000, 7001, 7002)}


def test_rollback_restores_programs_and_maps_proven_by_packets(dut):
    dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    dut.deploy("bl", "blocklist", priority=20)
    block(dut, ["203.0.113.9"])
    assert ckpt(dut, "begin")["programs"][0].startswith(dut.ifname)
    assert ckpt(dut, "commit")["recorded"] is False  # nothing changed: the history stays empty
    assert checkpoint.History(dut.state_dir).numbered() == []
    before = verdicts(dut)
    assert before == {7000: 0, 7001: 10, 7002: 10}

    ckpt(dut, "begin")
    dut.deploy("dp", config={"drop_port": 7001}, priority=10)
    block(dut, ["203.0.113.9", dut.peer_ip])
    dut.tc_deploy("tcdrop", config={"drop_port": 7000}, priority=10)
    # the hit counter of the kept key moves; that alone is not a change
    assert ckpt(dut, "commit")["recorded"] is True
    assert verdicts(dut) == {7000: 0, 7001: 0, 7002: 0}

    preview = ckpt(dut, "rollback", check=True)
    assert preview["changed"] is True
    assert any(a.startswith("maps of %s/bl: blocklist +0 -1" % dut.ifname) for a in preview["actions"])
    assert "remove %s/tcdrop" % dut.ifname in preview["actions"]
    assert verdicts(dut) == {7000: 0, 7001: 0, 7002: 0}  # check mode changed nothing

    back = ckpt(dut, "rollback")
    assert back["changed"] is True
    assert verdicts(dut) == before
    assert deny_keys(dut) == ["203.0.113.9"]
    assert "tcdrop" not in dut.tc_show()
    assert ckpt(dut, "rollback")["restored"] is None  # one change was recorded, and it is used up


def test_a_run_that_failed_before_commit_is_rolled_back(dut):
    dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    ckpt(dut, "begin")
    dut.deploy("dp2", config={"drop_port": 7002}, priority=30)  # then the run dies: no commit
    assert verdicts(dut) == {7000: 0, 7001: 10, 7002: 0}
    back = ckpt(dut, "rollback")
    assert back["actions"] == ["remove %s/dp2" % dut.ifname]
    assert verdicts(dut) == {7000: 0, 7001: 10, 7002: 10}


def test_rollback_to_none_removes_ours_keeps_foreign_and_can_be_undone(dut):
    dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    dut.deploy("bl", "blocklist", priority=20)
    block(dut, ["203.0.113.9", "203.0.113.10"])
    foreign = dut.tc_deploy("foreign", config={"drop_port": 7002}, priority=40,
                            state_dir=dut.state_dir + "-other")  # another tool's record: not ours to remove
    try:
        out = ckpt(dut, "rollback", to="none")
        assert sorted(out["actions"]) == ["remove %s/bl" % dut.ifname, "remove %s/dp" % dut.ifname]
        assert dut.xdp_prog() == ""
        assert verdicts(dut) == {7000: 10, 7001: 10, 7002: 0}  # the foreign filter still drops 7002
        assert ckpt(dut, "rollback", to="none")["changed"] is False

        again = ckpt(dut, "rollback")  # undo the emergency removal
        assert again["changed"] is True
        assert verdicts(dut) == {7000: 0, 7001: 10, 7002: 0}
        assert deny_keys(dut) == ["203.0.113.10", "203.0.113.9"]
        assert foreign["prog_id"]
    finally:
        shutil.rmtree(dut.state_dir + "-other", ignore_errors=True)


def test_counters_are_not_part_of_the_checkpoint(dut):
    dut.deploy("bl", "blocklist", priority=20)
    block(dut, [dut.peer_ip])
    first = ckpt(dut, "begin")["checkpoint"]
    assert dut.udp(7002, 10) == 0  # the blocklist's hit counter and ws_stats move
    with netns(dut.dut):
        assert checkpoint.take(dut.state_dir)["digest"] == first
    path = os.path.join(dut.pin_root, "bl", "maps", "blocklist")
    with PinnedMap(path) as m:
        assert struct.unpack("Q", m.dump()[ipaddress.IPv4Address(dut.peer_ip).packed])[0] >= 10


def test_firewall_deny_entries_come_back_without_their_counter_slot(dut, objects):
    """A firewall deny entry holds the slot of its per-CPU hit counter (deny_hits) once it hit: the checkpoint keeps
    the key, a rollback puts it back with no slot, so it takes a fresh one on its next hit and counts from there."""
    from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info

    dut.deploy("fw", objects["build"](os.path.join(BPF, "firewall.bpf.c")), priority=10)
    deny = os.path.join(dut.pin_root, "fw", "maps", "deny_v4")
    mapsync.sync(deny, entries=[dut.peer_ip], key_type="ipv4", exclusive=True)
    assert dut.udp(7001, 10) == 0
    with PinnedMap(deny) as m:
        assert [struct.unpack("<Q", v[:8])[0] for v in m.dump().values()] == [1]  # the first slot, taken on a hit
    ckpt(dut, "begin")
    mapsync.sync(deny, entries=[], key_type="ipv4", exclusive=True)
    assert ckpt(dut, "commit")["recorded"] is True
    assert dut.udp(7001, 10) == 10
    assert ckpt(dut, "rollback")["changed"] is True
    with PinnedMap(deny) as m:
        assert [struct.unpack("<Q", v[:8])[0] for v in m.dump().values()] == [0]  # back as a key, no slot
    assert dut.udp(7001, 10) == 0
    top = info.top_denied({"deny_v4": deny}, 3)
    assert [(t["map"], t["packets"]) for t in top] == [("deny_v4", 10)], top  # the new slot counts from 0
