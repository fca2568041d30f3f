# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab.py reboot: the disk survives, the kernel's state (bpffs, XDP, clsact, processes) does not,
and the host's enabled units run before its sshd answers again."""

import os
import platform
import subprocess
import sys

import pytest
from conftest import INCLUDE, REPO, TEST_BPF
from labplay import Lab

LAB_PY = os.path.join(REPO, "tests", "lab", "lab.py")
STATE = "/var/lib/wirespeed"
UNITS = STATE + "/systemd"

HELLO = """[Unit]
Description=lab reboot test

[Service]
Type=oneshot
Environment=MSG=hello
ExecStart=/bin/sh -c 'echo $MSG > /var/lib/wirespeed/booted'
"""

# a unit that records what listens when it runs: sshd must not yet
LISTENING = """[Service]
Type=oneshot
ExecStart=/bin/sh -c 'ss -ltnH > /var/lib/wirespeed/listening'
"""

FAILING = """[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo failing-unit-ran; exit 7'
ExecStart=/bin/sh -c 'echo never > /var/lib/wirespeed/after-failure'
"""

MISSING = """[Service]
ExecStart=/nonexistent/wirespeed-restore --now
"""


def _leftovers(prefix):
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    return [line for line in (netns + links).splitlines() if prefix in line]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    fleet = Lab(str(tmp_path_factory.mktemp("reboot") / "lab"))
    fleet.up(1, python=sys.executable)
    prefix, directory = fleet.meta["prefix"], fleet.dir
    try:
        yield fleet
    finally:
        pids = [h.get("pid") for h in fleet.hosts]
        fleet.down()
        assert not _leftovers(prefix), _leftovers(prefix)
        assert not os.path.exists(directory)
        assert not [p for p in pids if p and os.path.exists("/proc/%d" % p)]


@pytest.fixture(scope="module")
def xdp_object(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("obj") / "plain_blocklist.o")
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I", INCLUDE,
                    "-I/usr/include/%s-linux-gnu" % platform.machine(), "-c",
                    os.path.join(TEST_BPF, "plain_blocklist.bpf.c"), "-o", out], check=True)
    return out


def ssh(lab, command):
    result = lab.ssh(lab.hosts[0], command)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


def install_unit(lab, name, text, target, link=True):
    """A unit on the host's disk, enabled for target: a symlink in TARGET.wants (or a plain file there)."""
    disk = lab.disk(lab.hosts[0])
    wants = os.path.join(disk, "systemd", target + ".wants")
    os.makedirs(wants, exist_ok=True)
    if link:
        with open(os.path.join(disk, "systemd", name), "w") as fh:
            fh.write(text)
        # the way systemctl enable writes it: an absolute path, as the host sees it
        os.symlink(os.path.join(UNITS, name), os.path.join(wants, name))
    else:
        with open(os.path.join(wants, name), "w") as fh:
            fh.write(text)


def clear_units(lab):
    ssh(lab, "rm -rf %s %s/booted %s/listening" % (UNITS, STATE, STATE))


def xdp_on(lab, dev):
    return subprocess.run(["ip", "-n", lab.hosts[0]["ns"], "link", "show", dev], capture_output=True, text=True,
                          check=True).stdout


def test_reboot_keeps_the_disk_and_forgets_the_kernel(lab, xdp_object):
    host = lab.hosts[0]
    clear_units(lab)
    ssh(lab, "echo on-disk > %s/kept && mkdir /sys/fs/bpf/marker" % STATE)
    ssh(lab, "ip link set dev eth0 xdpgeneric obj %s sec xdp && tc qdisc add dev eth0 clsact" % xdp_object)
    assert "prog/xdp" in xdp_on(lab, "eth0")
    # a process the host started: a reboot ends it
    ssh(lab, "setsid sleep 600 </dev/null >/dev/null 2>&1 &")
    before = set(subprocess.run(["ip", "netns", "pids", host["ns"]], capture_output=True, text=True,
                                check=True).stdout.split())
    # a controller-side ControlMaster like Ansible's: a reboot closes it
    control = os.path.join(lab.dir, "cp-%s" % host["ip"])
    subprocess.run(["ssh", "-i", os.path.join(lab.dir, "id_ed25519"), "-o", "BatchMode=yes",
                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                    "-o", "ControlMaster=yes", "-o", "ControlPath=" + control, "-f", "-N", "root@" + host["ip"]],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   timeout=30)
    assert os.path.exists(control)
    install_unit(lab, "t.service", HELLO, "network-pre.target")
    install_unit(lab, "listening.service", LISTENING, "multi-user.target", link=False)
    old_pid = host["pid"]

    lab.reboot(host["name"])

    assert host["pid"] != old_pid and not os.path.exists("/proc/%d" % old_pid)
    after = set(subprocess.run(["ip", "netns", "pids", host["ns"]], capture_output=True, text=True,
                               check=True).stdout.split())
    assert not before & after, "processes of the old boot survived: %s" % (before & after)
    assert not os.path.exists(control)
    assert ssh(lab, "cat %s/kept" % STATE) == "on-disk\n"
    assert ssh(lab, "test -e /sys/fs/bpf/marker && echo present || echo gone").strip() == "gone"
    assert "prog/xdp" not in xdp_on(lab, "eth0")
    qdiscs = subprocess.run(["tc", "-n", host["ns"], "qdisc", "show", "dev", "eth0"], capture_output=True,
                            text=True, check=True).stdout
    assert "clsact" not in qdiscs
    # the units ran, and before sshd listened
    assert ssh(lab, "cat %s/booted" % STATE) == "hello\n"
    assert ":22 " not in ssh(lab, "cat %s/listening" % STATE)
    assert ":22 " in ssh(lab, "ss -ltnH")
    with open(lab.boot_log(host)) as fh:
        log = fh.read()
    last = log[log.rindex("== boot started"):]
    assert "t.service: ExecStart=/bin/sh -c 'echo $MSG > /var/lib/wirespeed/booted': exit status 0" in last
    assert "listening.service: ExecStart=/bin/sh -c 'ss -ltnH > /var/lib/wirespeed/listening': exit status 0" in last
    assert "== boot finished: 2 unit(s), 0 failed" in last
    assert last.index("-- t.service") < last.index("-- listening.service")  # network-pre before multi-user


def test_a_failing_unit_does_not_keep_sshd_down(lab):
    host = lab.hosts[0]
    clear_units(lab)
    ssh(lab, "rm -f %s/after-failure" % STATE)
    install_unit(lab, "failing.service", FAILING, "multi-user.target")
    install_unit(lab, "missing.service", MISSING, "multi-user.target")
    install_unit(lab, "t.service", HELLO, "multi-user.target")
    # through the command line, as a developer or a molecule scenario would
    subprocess.run([sys.executable, LAB_PY, "reboot", host["name"], "--dir", lab.dir], check=True,
                   capture_output=True, text=True, timeout=300)
    lab.meta = Lab(lab.dir).meta  # the command line wrote the new sshd's pid to lab.json
    assert ssh(lab, "cat %s/booted" % STATE) == "hello\n"  # a later unit still ran
    assert ssh(lab, "test -e %s/after-failure && echo ran || echo skipped" % STATE).strip() == "skipped"
    with open(lab.boot_log(host)) as fh:
        last = fh.read().rsplit("== boot started", 1)[1]
    assert "failing-unit-ran" in last
    assert "failing.service: ExecStart=/bin/sh -c 'echo failing-unit-ran; exit 7': exit status 7" in last
    assert "failing.service: failed; its remaining ExecStart= lines are skipped" in last
    assert "missing.service: ExecStart=/nonexistent/wirespeed-restore --now: cannot start" in last
    assert "2 failed" in last


def test_reboot_of_an_unknown_host_says_so(lab):
    proc = subprocess.run([sys.executable, LAB_PY, "reboot", "nohost", "--dir", lab.dir], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "no host 'nohost'" in proc.stderr
