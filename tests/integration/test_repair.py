# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Defects found by users, each proven fixed on a real kernel: lost pins, a lost pin folder, map names that
escape their program, pin paths outside bpffs, and concurrent map syncs against one host."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def chain(dut):
    with netns(dut.dut):
        facts = info.gather([dut.ifname], state_dir=dut.state_dir)[dut.ifname]
    return [(e["name"], e["prog"]["id"]) for e in facts["chain"]], facts


def deny(dut, addresses):
    path = os.path.join(dut.pin_root, "bl", "maps", "blocklist")
    return mapsync.sync(path, entries=addresses, key_type="ipv4", exclusive=True, state_dir=dut.state_dir)


def test_a_program_whose_pins_were_deleted_is_replaced_not_left_running(dut):
    dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    dut.deploy("bl", "blocklist", priority=20)
    deny(dut, [dut.peer_ip])
    assert dut.udp(7001, 5) == 0
    shutil.rmtree(os.path.join(dut.pin_root, "bl"))  # by hand: the program keeps running, unreachable
    assert [n for n, _i in chain(dut)[0]] == ["dp", "slot1"]

    result = dut.deploy("bl", "blocklist", priority=20)
    assert result["changed"]
    programs, _facts = chain(dut)
    assert [n for n, _i in programs] == ["dp", "bl"], "exactly one copy of bl, in its place"
    deny(dut, [])  # the peer leaves the deny list: nothing may still drop it
    assert dut.udp(7001, 5) == 5 and dut.udp(7000, 5) == 0
    assert not dut.deploy("bl", "blocklist", priority=20)["changed"]


def test_a_lost_pin_folder_is_repaired_without_force(dut):
    dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    old_root = dut.xdp_prog()
    shutil.rmtree(dut.pin_root)  # the whole interface folder, chain root included; the root stays attached
    assert dut.xdp_prog() == old_root

    result = dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    assert result["changed"] and dut.xdp_prog() != old_root
    assert [n for n, _i in chain(dut)[0]] == ["dp"]
    assert dut.udp(7000, 5) == 0 and dut.udp(7001, 5) == 5
    assert not dut.deploy("dp", config={"drop_port": 7000}, priority=10)["changed"]


@pytest.mark.parametrize("where,expected", [
    (dict(name="../dp"), "name '../dp' must start with a letter or digit"),
    (dict(name="dp", map_name="../../dp/maps/x"), "map '../../dp/maps/x' is not a BPF map name"),
    (dict(interface="../x"), "interface '../x' is not an interface name"),
])
def test_a_map_name_cannot_reach_another_programs_map(dut, where, expected):
    dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    args = dict(interface=dut.ifname, name="bl", map_name="blocklist", bpffs_path=dut.bpffs)
    args.update(where)
    with pytest.raises(DatapathError) as err:
        mapsync.map_path(None, **args)
    assert err.value.message.startswith(expected)


def test_pin_path_outside_bpffs_is_refused_before_anything_is_made(dut, tmp_path):
    target = tmp_path / "pins" / "dp"
    with pytest.raises(DatapathError) as err:
        dut.deploy("dp", config={"drop_port": 7000}, pin_path=str(target))
    assert err.value.message == ("pin_path %s is not on a BPF filesystem; choose a directory under %s (the bpffs "
                                 "option)." % (target, dut.bpffs))
    assert not (tmp_path / "pins").exists() and dut.xdp_prog() == ""


CONCURRENT = r"""
import json, sys
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync
a = json.loads(sys.argv[1])
for _ in range(a["rounds"]):
    mapsync.sync(a["path"], entries=a["entries"], key_type="ipv4", exclusive=True, state_dir=a["state"])
"""


def test_concurrent_syncs_of_one_map_take_turns(dut):
    """Two writers (a 4000-entry list and a 2-entry list) against one map: every sync is whole, never interleaved."""
    dut.deploy("bl", "blocklist_big", priority=20)
    path = os.path.join(dut.pin_root, "bl", "maps", "blocklist")
    big = ["10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255) for i in range(4000)]
    small = ["198.51.100.1", "198.51.100.2"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT,
                               json.dumps({"path": path, "entries": entries, "state": dut.state_dir, "rounds": 15})],
                              env=env, stderr=subprocess.PIPE, text=True)
             for entries in (big, small)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    final = mapsync.sync(path, entries=small, key_type="ipv4", exclusive=True, state_dir=dut.state_dir,
                         check_mode=True, return_entries=True)
    held = sorted(e["key"] for e in final["entries"])
    assert held in (sorted(big), sorted(small)), "a sync was interleaved with another: %d entries" % len(held)
