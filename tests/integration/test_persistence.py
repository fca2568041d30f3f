# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot-time restore and commit-confirmed changes on a real kernel, through the host tool the modules install:
a simulated reboot brings the confirmed datapath back, an unconfirmed change is taken back by a real watchdog
process, and bad input is refused by name."""

import json
import os
import shutil
import socket
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


# ---- devices that appear after the restore started (issue 27 item 2, issue 24 item 4) --------------------------
# This machine's kernel has no vlan, bonding, wireguard or dummy module (`ip link add type vlan` answers "Unknown
# device type"), so the devices made later are the kinds it has: a VXLAN (made by network configuration like a
# VLAN or a WireGuard device), a bridge (a master device like a bond) and a macvlan (stacked on the NIC like a
# VLAN). XDP on all three is generic only, as on a VLAN or WireGuard device.
LATE_KINDS = {
    "vx": ["type", "vxlan", "id", "42", "dstport", "4789"],
    "br": ["type", "bridge"],
    "mv": ["link", "{ifname}", "type", "macvlan", "mode", "bridge"],
}


def _late_names(dut):
    return {kind: "ws%s%s" % (kind, dut.suffix) for kind in LATE_KINDS}


def _make(dut, kind, name):
    words = [w.format(ifname=dut.ifname) for w in LATE_KINDS[kind]]
    subprocess.run(["ip", "-n", dut.dut, "link", "add", name] + words, check=True)
    subprocess.run(["ip", "-n", dut.dut, "link", "set", name, "up"], check=True)


def _xdp_prog_id(dut, name):
    out = subprocess.run(["ip", "-n", dut.dut, "-j", "-d", "link", "show", name], capture_output=True, text=True,
                         check=False).stdout
    if not out.strip():
        return None
    xdp = json.loads(out)[0].get("xdp") or {}
    return xdp.get("prog", {}).get("id") or xdp.get("prog_id")


def _until(what, deadline_s):
    """Poll what() until it is true or deadline_s passed (a wait on the event, bounded); its last value."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = what()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


def _start_tool(dut, notify_path, *args):
    """The host tool as systemd runs the Type=notify unit: NOTIFY_SOCKET set, inside the host's namespace."""
    code = ("import ctypes, os, runpy, sys\n"
            "fd = os.open('/run/netns/%s', os.O_RDONLY)\n"
            "assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0\n"
            "sys.argv = sys.argv[1:]\n"
            "runpy.run_path(sys.argv[0], run_name='__main__')\n" % dut.dut)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if notify_path:
        env["NOTIFY_SOCKET"] = notify_path
    return subprocess.Popen([sys.executable, "-c", code, tool.tool_path(dut.state_dir)] + list(args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _converge_with_late_devices(dut, names):
    for kind, name in names.items():
        _make(dut, kind, name)
    checkpoint.begin(dut.state_dir)
    dut.deploy("dp", config={"drop_port": 7000}, priority=10)
    for name in names.values():
        dut.deploy("dp", interface=name, config={"drop_port": 7000}, priority=10, mode="generic")
    dut.tc_deploy("tcdp", interface=names["vx"], config={"drop_port": 7002}, priority=5)
    with netns(dut.dut):
        checkpoint.commit(dut.state_dir)
    restore.install(dut.state_dir, unit_dir=os.path.join(dut.state_dir, "units"))
    for name in names.values():  # a reboot: the network configuration has not made them yet (and the kernel
        subprocess.run(["ip", "-n", dut.dut, "link", "del", name], check=True)  # keeps the NIC's XDP while an
        shutil.rmtree(os.path.join(dut.bpffs, "wirespeed", name), ignore_errors=True)  # upper device has one)
    reboot(dut)


def _cleanup_pins(dut, names):
    for name in names.values():
        shutil.rmtree(os.path.join(dut.bpffs, "wirespeed", name), ignore_errors=True)


def test_devices_created_after_the_restore_started_get_their_programs_as_they_appear(dut, tmp_path):
    names = _late_names(dut)
    notify = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    proc = None
    try:
        _converge_with_late_devices(dut, names)
        assert dut.xdp_prog() == ""
        proc = _start_tool(dut, str(notify), "restore", "--state-dir", dut.state_dir, "--wait", "0",
                           "--watch", "120")
        listener.settimeout(60)
        ready = listener.recv(4096).decode()  # the unit is started while three devices are still missing
        assert ready.startswith("READY=1"), ready
        assert proc.poll() is None  # and it goes on watching for them
        assert "wirespeed_root" in dut.xdp_prog() and dut.udp(7000, 5) == 0  # what existed is restored
        for kind, name in names.items():
            _make(dut, kind, name)
            assert _until(lambda n=name: _xdp_prog_id(dut, n), 20), "no XDP on %s %s after 20 s" % (kind, name)
        out, err = proc.communicate(timeout=60)  # every device is back: the watcher ends before its bound
        assert proc.returncode == 0, err
        report = json.loads(out.strip().splitlines()[-1])
        results = {(p["interface"], p["name"]): p for p in report["programs"]}
        assert report["ok"] and {p["result"] for p in results.values()} == {"restored"}, report
        for name in names.values():
            assert results[(name, "dp")]["mode"] == "generic" and "appeared_after" in results[(name, "dp")]
            assert "interface %s appeared after" % name in err
        assert results[(names["vx"], "tcdp")]["result"] == "restored"
        assert "bpf" in subprocess.run(["tc", "-n", dut.dut, "filter", "show", "dev", names["vx"], "ingress"],
                                       capture_output=True, text=True, check=True).stdout
    finally:
        listener.close()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        _cleanup_pins(dut, names)


def test_a_device_that_never_appears_is_reported_and_the_restore_ends_green(dut):
    names = _late_names(dut)
    try:
        _converge_with_late_devices(dut, names)
        _make(dut, "vx", names["vx"])  # the VXLAN comes back; the bridge and the macvlan are gone for good
        proc = _start_tool(dut, None, "restore", "--state-dir", dut.state_dir, "--wait", "0", "--watch", "1")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        report = json.loads(out.strip().splitlines()[-1])
        results = {(p["interface"], p["name"]): p["result"] for p in report["programs"]}
        assert report["ok"] and results == {
            (dut.ifname, "dp"): "restored", (names["vx"], "dp"): "restored", (names["vx"], "tcdp"): "restored",
            (names["br"], "dp"): "missing", (names["mv"], "dp"): "missing"}, report
        for gone in (names["br"], names["mv"]):
            assert "interface %s did not appear within 1 s" % gone in err
        assert dut.udp(7000, 5) == 0 and _xdp_prog_id(dut, names["vx"])
    finally:
        _cleanup_pins(dut, names)
