# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot-time restore and commit-confirmed changes on a real kernel, through the host tool the modules install:
a simulated reboot brings the confirmed datapath back, an unconfirmed change is taken back by a real watchdog
process, and bad input is refused by name."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import TEST_BPF
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint, info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.host import confirm, restore, tool


def deny(dut, addresses):
    path = os.path.join(dut.pin_root, "bl", "maps", "blocklist")
    return mapsync.sync(path, entries=addresses, key_type="ipv4", exclusive=True, state_dir=dut.state_dir)


def chain(dut):
    with netns(dut.dut):
        facts = info.gather([dut.ifname], state_dir=dut.state_dir)[dut.ifname]
    return [(e["name"], e["priority"]) for e in facts["chain"]], facts


def reboot(dut):
    """What a reboot does to the datapath: nothing attached, bpffs empty; the state directory (disk) stays."""
    subprocess.run(["ip", "-n", dut.dut, "link", "set", "dev", dut.ifname, "xdp", "off"], check=True)
    subprocess.run(["tc", "-n", dut.dut, "qdisc", "del", "dev", dut.ifname, "clsact"], check=False,
                   capture_output=True)
    shutil.rmtree(dut.pin_root, ignore_errors=True)


def run_tool(dut, *args, timeout=60):
    """The host tool as the boot unit runs it: its own process, no Ansible, inside the host's namespace."""
    code = ("import ctypes, os, runpy, sys\n"
            "fd = os.open('/run/netns/%s', os.O_RDONLY)\n"
            "assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0\n"
            "sys.argv = sys.argv[1:]\n"
            "runpy.run_path(sys.argv[0], run_name='__main__')\n" % dut.dut)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the zipapp carries the engine itself
    proc = subprocess.run([sys.executable, "-c", code, tool.tool_path(dut.state_dir)] + list(args), env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else proc.stderr


def converge(dut, peer_denied=True):
    """A run of site.yml, engine side: begin, two programs and a deny list, commit (the boot datapath)."""
    checkpoint.begin(dut.state_dir)
    dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    dut.deploy("bl", "blocklist", priority=20)
    deny(dut, [dut.peer_ip] if peer_denied else [])
    dut.tc_deploy("tcdp", config={"drop_port": 7002}, priority=5)
    with netns(dut.dut):
        return checkpoint.commit(dut.state_dir)


def test_a_reboot_brings_back_the_confirmed_datapath(dut):
    assert converge(dut)["boot_datapath_updated"]
    assert restore.install(dut.state_dir, unit_dir=os.path.join(dut.state_dir, "units"))["changed"]
    before, _facts = chain(dut)
    reboot(dut)
    assert dut.xdp_prog() == "" and dut.udp(7000, 5) == 5 and dut.udp(7002, 5) == 5

    code, report = run_tool(dut, "restore", "--state-dir", dut.state_dir, "--wait", "5")
    assert code == 0 and report["ok"], report
    assert sorted((p["name"], p["result"]) for p in report["programs"]) == [
        ("bl", "restored"), ("dp", "restored"), ("tcdp", "restored")]
    after, facts = chain(dut)
    assert after == before == [("dp", 10), ("bl", 20)]
    assert facts["xdp_mode"] == "native" and facts["programs"]["tcdp"]["hook"] == "tc ingress"
    assert dut.udp(7000, 5) == 0 and dut.udp(7001, 5) == 0 and dut.udp(7002, 5) == 0  # deny list refilled too
    deny(dut, [])
    assert dut.udp(7001, 5) == 5

    deny(dut, [dut.peer_ip])  # the boot datapath still holds the peer: a second restore changes nothing else
    code, report = run_tool(dut, "restore", "--state-dir", dut.state_dir, "--wait", "1")
    assert code == 0 and {p["result"] for p in report["programs"]} == {"running"}


def test_a_restore_reports_a_missing_object_and_restores_the_rest(dut):
    converge(dut)
    restore.install(dut.state_dir, unit_dir=os.path.join(dut.state_dir, "units"))
    lost = checkpoint.History(dut.state_dir).boot()
    lost = next(p for p in lost["programs"] if p["name"] == "bl")["record"]["object"]
    os.unlink(lost)
    reboot(dut)
    code, report = run_tool(dut, "restore", "--state-dir", dut.state_dir, "--wait", "1")
    assert code == 1 and not report["ok"]
    results = {p["name"]: p for p in report["programs"]}
    assert results["bl"]["result"] == "failed" and lost in results["bl"]["reason"]
    assert results["dp"]["result"] == "restored" and results["tcdp"]["result"] == "restored"
    assert dut.udp(7000, 5) == 0 and dut.udp(7001, 5) == 5


def test_the_restore_unit_passes_systemd_analyze_verify(dut, tmp_path):
    units = tmp_path / "units"
    result = restore.install(dut.state_dir, unit_dir=str(units), python=sys.executable)
    unit = units / restore.UNIT_NAME
    assert os.path.islink(units / "multi-user.target.wants" / restore.UNIT_NAME)
    text = unit.read_text()
    assert "Before=network-pre.target" in text and "Wants=network-pre.target" in text
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not restore.install(dut.state_dir, unit_dir=str(units), python=sys.executable)["changed"]
    assert result["tool"] == tool.tool_path(dut.state_dir)
    assert restore.uninstall(dut.state_dir, unit_dir=str(units))["changed"]
    assert not unit.exists() and not os.path.exists(result["tool"])


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_an_unconfirmed_change_is_taken_back_by_the_host_itself(dut):
    converge(dut, peer_denied=False)
    with netns(dut.dut):
        armed = confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=3)
    assert armed["armed"] and armed["timer"] == "process"
    dut.deploy("dp", config={"drop_port": 7001}, priority=10)  # the bad change: now the peer's port drops
    deny(dut, [dut.peer_ip])
    assert dut.udp(7001, 5) == 0
    history = checkpoint.History(dut.state_dir)
    assert wait_for(lambda: history.armed() is None, 10), "the watchdog did not act"
    assert dut.udp(7001, 5) == 5 and dut.udp(7000, 5) == 0  # the datapath before the change, maps included
    with netns(dut.dut), pytest.raises(DatapathError) as err:
        confirm.confirm(dut.state_dir, bpffs_path=dut.bpffs)
    assert err.value.code == "rolled_back" and "was not confirmed within 3 s" in err.value.message
    with pytest.raises(DatapathError) as err:  # the run that began it must not go on changing the host
        dut.deploy("dp", config={"drop_port": 7002}, priority=10)
    assert err.value.code == "rolled_back" and "this run stops here" in err.value.message
    assert dut.udp(7001, 5) == 5
    with netns(dut.dut):
        taken = confirm.abort(dut.state_dir, bpffs_path=dut.bpffs)
        assert taken["rolled_back"] and "back by itself" in taken["msg"]
        assert confirm.confirm(dut.state_dir)["msg"].startswith("nothing on this host is waiting")


def kill_watchdog(dut):
    pid = checkpoint.History(dut.state_dir).armed()["timer"]["pid"]
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def test_a_confirm_after_the_deadline_rolls_back_even_when_the_timer_died(dut):
    converge(dut, peer_denied=False)
    with netns(dut.dut):
        confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=1)
    kill_watchdog(dut)
    dut.deploy("dp", config={"drop_port": 7001}, priority=10)
    time.sleep(1.5)
    with netns(dut.dut), pytest.raises(DatapathError) as err:
        confirm.confirm(dut.state_dir, bpffs_path=dut.bpffs)
    assert err.value.code == "rolled_back" and "its confirm came after the deadline" in err.value.message
    assert dut.udp(7001, 5) == 5 and dut.udp(7000, 5) == 0


def test_a_commit_cannot_take_an_armed_change_s_checkpoint(dut):
    converge(dut)
    with netns(dut.dut):
        confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=120)
        with pytest.raises(DatapathError) as err:
            checkpoint.commit(dut.state_dir)
        assert err.value.code == "armed" and "before committing" in err.value.message
        confirm.abort(dut.state_dir, bpffs_path=dut.bpffs)


def test_a_rollback_that_fails_still_disarms_and_says_so(dut):
    converge(dut, peer_denied=False)
    with netns(dut.dut):
        confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=60)
    kill_watchdog(dut)
    dut.deploy("dp", config={"drop_port": 7001}, priority=10)
    pending = checkpoint.History(dut.state_dir).pending()
    lost = next(p for p in pending["programs"] if p["name"] == "bl")["record"]["object"]
    dut.remove("bl")  # so the rollback has to deploy bl again, from an object that is gone
    os.unlink(lost)
    token = checkpoint.History(dut.state_dir).armed()["token"]
    with netns(dut.dut), pytest.raises(DatapathError):
        confirm.expire(dut.state_dir, dut.bpffs, token)
    history = checkpoint.History(dut.state_dir)
    assert history.armed() is None
    with open(history.expiry_note) as fh:
        assert "the rollback itself failed" in fh.read()


def test_a_confirmed_change_stays_and_becomes_the_boot_datapath(dut):
    converge(dut, peer_denied=False)
    with netns(dut.dut):
        confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=3)
        dut.deploy("dp", config={"drop_port": 7001}, priority=10)
        done = confirm.confirm(dut.state_dir, bpffs_path=dut.bpffs)
    assert done["confirmed"] and done["boot_datapath_updated"]
    time.sleep(4)  # past the deadline: nothing may roll back now
    assert dut.udp(7001, 5) == 0 and dut.udp(7000, 5) == 5
    boot = checkpoint.History(dut.state_dir).boot()
    dp = next(p for p in boot["programs"] if p["name"] == "dp")
    assert dp["record"]["config"] == {"drop_port": 7001}


def test_a_reboot_before_the_confirm_boots_the_last_confirmed_datapath(dut):
    converge(dut, peer_denied=False)
    restore.install(dut.state_dir, unit_dir=os.path.join(dut.state_dir, "units"))
    with netns(dut.dut):
        confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=60)
    dut.deploy("dp", config={"drop_port": 7001}, priority=10)
    reboot(dut)
    code, report = run_tool(dut, "restore", "--state-dir", dut.state_dir, "--wait", "1")
    assert code == 0 and report["unconfirmed_change_dropped"]
    assert dut.udp(7000, 5) == 0 and dut.udp(7001, 5) == 5
    assert checkpoint.History(dut.state_dir).armed() is None


def test_a_rise_of_xdp_aborted_refuses_the_confirm_and_rolls_back(dut, objects):
    converge(dut, peer_denied=False)
    aborting = objects["build"](os.path.join(TEST_BPF, "abort_port.bpf.c"))
    with netns(dut.dut):
        confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=60)
    dut.deploy("ab", aborting, config={"abort_port": 7003}, priority=15)
    assert dut.udp(7003, 5) == 0
    with netns(dut.dut), pytest.raises(DatapathError) as err:
        confirm.confirm(dut.state_dir, bpffs_path=dut.bpffs)
    assert err.value.code == "unhealthy" and "XDP_ABORTED rose from 0 to" in err.value.message
    assert [n for n, _p in chain(dut)[0]] == ["dp", "bl"] and dut.udp(7003, 5) == 5


@pytest.mark.parametrize("timeout", [0, -5, 86401, True, "30"])
def test_confirm_timeout_out_of_range_is_refused_before_anything(dut, timeout):
    with netns(dut.dut), pytest.raises(DatapathError) as err:
        confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=timeout)
    assert err.value.message.startswith("confirm_timeout %r must be a whole number of seconds" % (timeout,))
    assert checkpoint.History(dut.state_dir).armed() is None and checkpoint.History(dut.state_dir).pending() is None


def test_a_second_begin_while_a_change_waits_is_refused_with_the_time_left(dut):
    converge(dut)
    with netns(dut.dut):
        confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=120)
        with pytest.raises(DatapathError) as err:
            confirm.begin(dut.state_dir, bpffs_path=dut.bpffs, timeout=120)
        assert err.value.code == "armed" and "s left before this host rolls it back" in err.value.message
        with pytest.raises(DatapathError):
            checkpoint.begin(dut.state_dir)
        assert confirm.abort(dut.state_dir, bpffs_path=dut.bpffs)["rolled_back"]
    assert checkpoint.History(dut.state_dir).armed() is None


def test_a_state_directory_that_is_not_writable_is_named(dut, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    with netns(dut.dut), pytest.raises(DatapathError) as err:
        confirm.begin(str(blocked / "state"), bpffs_path=dut.bpffs, timeout=30)
    assert "state directory %s" % (blocked / "state") in err.value.message
