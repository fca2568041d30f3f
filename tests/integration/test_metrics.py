# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus textfile on a real datapath: counters proven by packets, map fill levels, the host tool and the
timer's service run as systemd would run them (systemd is not PID 1 here), and bad directories refused."""

import os
import shlex
import socket
import struct
import subprocess
import sys

import pytest
from netlab import netns
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.host import cli, metrics, tool
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf


def parse(path):
    with open(path) as fh:
        text = fh.read()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found, name, **labels):
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def datapath(dut):
    """The port filter (UDP 7001 dropped) and a plain blocklist holding three addresses, on the dut."""
    dut.deploy("dp", config={"drop_port": 7001}, priority=10)
    dut.deploy("bl", "blocklist", priority=20)
    fd = libbpf.obj_get(os.path.join(dut.pin_root, "bl", "maps", "blocklist"))
    try:
        for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
            libbpf.map_update(fd, socket.inet_aton(ip), struct.pack("Q", 0))
    finally:
        os.close(fd)
    return dut


def test_counters_in_the_file_are_the_packets_sent(datapath, tmp_path):
    assert datapath.udp(7001, 5) == 0 and datapath.udp(7000, 4) == 4
    with netns(datapath.dut):
        path = metrics.write(str(tmp_path), metrics.collect(datapath.state_dir, datapath.bpffs))
    assert path == str(tmp_path / "wirespeed.prom") and oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["wirespeed.prom"]  # no temporary file left behind
    found = parse(path)
    dp = {"interface": datapath.ifname, "hook": "xdp", "program": "dp"}
    assert value(found, "wirespeed_packets_total", action="drop", reason="deny_port", **dp) == 5
    assert value(found, "wirespeed_packets_total", action="drop", reason="none", **dp) == 0
    assert value(found, "wirespeed_packets_total", action="pass", reason="", **dp) >= 4
    assert value(found, "wirespeed_packets_total", action="aborted", reason="", **dp) == 0
    bl = {"interface": datapath.ifname, "program": "bl", "map": "blocklist"}
    assert value(found, "wirespeed_map_entries", **bl) == 3
    assert value(found, "wirespeed_map_max_entries", **bl) >= 3
    assert value(found, "wirespeed_problems") == 0


def run_in_dut(dut, argv):
    """argv as its own process inside the dut's network namespace (setns, so bpffs stays visible)."""
    code = ("import ctypes, os, sys\n"
            "fd = os.open('/run/netns/%s', os.O_RDONLY)\n"
            "assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0\n"
            "os.execv(sys.argv[1], sys.argv[1:])\n" % dut.dut)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the zipapp carries the engine itself
    return subprocess.run([sys.executable, "-c", code] + argv, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_timer_units_verify_and_their_command_refreshes_the_file(datapath, tmp_path):
    units, out = tmp_path / "units", tmp_path / "textfile"
    units.mkdir()
    out.mkdir()
    installed = metrics.install(str(out), state_dir=datapath.state_dir, unit_dir=str(units), interval=15,
                                python=sys.executable, entry=cli.__name__)
    assert installed["changed"] and installed["tool"] == tool.tool_path(datapath.state_dir)
    assert os.path.islink(units / "timers.target.wants" / metrics.TIMER)
    for name in (metrics.SERVICE, metrics.TIMER):
        proc = subprocess.run(["systemd-analyze", "verify", str(units / name)], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stderr
    assert "OnUnitActiveSec=15" in (units / metrics.TIMER).read_text()
    again = metrics.install(str(out), state_dir=datapath.state_dir, unit_dir=str(units), interval=15,
                            python=sys.executable, entry=cli.__name__)
    assert not again["changed"]

    exec_start = next(line for line in (units / metrics.SERVICE).read_text().splitlines()
                      if line.startswith("ExecStart="))[len("ExecStart="):]
    assert datapath.udp(7001, 3) == 0
    ran = run_in_dut(datapath, shlex.split(exec_start))  # what the timer's service runs, as its own process
    assert ran.returncode == 0, ran.stderr
    dp = {"interface": datapath.ifname, "hook": "xdp", "program": "dp"}
    assert value(parse(out / "wirespeed.prom"), "wirespeed_packets_total", action="drop", reason="deny_port", **dp) == 3
    assert datapath.udp(7001, 2) == 0
    assert run_in_dut(datapath, shlex.split(exec_start)).returncode == 0
    assert value(parse(out / "wirespeed.prom"), "wirespeed_packets_total", action="drop", reason="deny_port", **dp) == 5

    removed = metrics.uninstall(str(out), unit_dir=str(units))
    assert removed["changed"] and not list(units.glob("wirespeed-metrics.*")) and not (out / "wirespeed.prom").exists()


@pytest.mark.parametrize("case", ["missing", "a file", "read-only"])
def test_a_directory_that_cannot_take_the_file_is_refused_and_nothing_is_written(datapath, tmp_path, case):
    target = tmp_path / "textfile"
    if case == "a file":
        target.write_text("")
    elif case == "read-only":
        target.mkdir()
        subprocess.run(["mount", "--bind", "-o", "ro", str(target), str(target)], check=True)  # root ignores modes
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
    with netns(datapath.dut):
        text = metrics.collect(datapath.state_dir, datapath.bpffs)
    try:
        with pytest.raises(DatapathError) as err:
            metrics.write(str(target), text, "wirespeed_metrics_dir")
        assert err.value.message.startswith("wirespeed_metrics_dir %s is not " % target)
        assert "set wirespeed_metrics_dir" in err.value.message
    finally:
        if case == "read-only":
            subprocess.run(["umount", str(target)], check=True)
    assert not (target.is_dir() and list(target.iterdir()))


@pytest.mark.parametrize("interval", [0, 4, 3601, True, "60"])
def test_an_interval_out_of_range_is_refused(interval):
    with pytest.raises(DatapathError) as err:
        metrics.check_interval(interval)
    assert err.value.message == "interval %r must be a whole number of seconds from 5 to 3600." % (interval,)
