# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The booting lab itself (tests/lab/nspawn.py): a host is systemd as PID 1 on its own root filesystem, reached
as `ops` with sudo and the distro's Python, without pyroute2 until the host role installs it; a reboot is
`systemctl reboot` (nspawn's exit 133) after which the disk is kept and the kernel's state is not (fresh bpffs,
new devices, nothing attached, no process of the last boot); `down` leaves nothing behind."""

import os
import platform
import subprocess
import sys

import pytest
from conftest import INCLUDE, REPO, TEST_BPF
from labplay import BootLab
from nspawn import _container_pids

NSPAWN_PY = os.path.join(REPO, "tests", "lab", "nspawn.py")
RELEASE = os.environ.get("WIRESPEED_LAB_RELEASE", "bookworm")


def _leftovers(prefix, directory):
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    with open("/proc/self/mountinfo") as fh:
        mounts = [line for line in fh if directory in line]
    return [line for line in (netns + links).splitlines() if prefix in line] + mounts


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    fleet = BootLab(str(tmp_path_factory.mktemp("nspawn") / "lab"))
    fleet.up(1, release=RELEASE)
    prefix, directory = fleet.meta["prefix"], fleet.dir
    try:
        yield fleet
    finally:
        supervisors = [h.get("pid") for h in fleet.hosts] + fleet.meta["pids"]
        roots = [fleet.root(h) for h in fleet.hosts]
        fleet.down()
        assert not _leftovers(prefix, directory), _leftovers(prefix, directory)
        assert not os.path.exists(directory)
        assert not [p for p in supervisors if p and os.path.exists("/proc/%d" % p)]
        assert not [r for r in roots if _container_pids(r)]


@pytest.fixture(scope="module")
def xdp_object(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("obj") / "plain_blocklist.o")
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I", INCLUDE,
                    "-I/usr/include/%s-linux-gnu" % platform.machine(), "-c",
                    os.path.join(TEST_BPF, "plain_blocklist.bpf.c"), "-o", out], check=True)
    return out


def ssh(lab, command, sudo=True):
    result = lab.ssh(lab.hosts[0], command, sudo=sudo)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


def test_a_host_is_a_booted_debian_reached_as_ops_with_sudo(lab):
    assert ssh(lab, "id -un", sudo=False).strip() == "ops"
    assert ssh(lab, "id -u").strip() == "0"  # passwordless sudo
    assert ssh(lab, "cat /proc/1/comm").strip() == "systemd"
    assert ssh(lab, "systemctl is-system-running --wait || true").strip() == "running"
    assert ssh(lab, "systemctl is-active ssh").strip() == "active"  # sshd started by systemd
    assert ssh(lab, "readlink -f /usr/bin/python3").startswith("/usr/bin/python3.")
    assert lab.ssh(lab.hosts[0], "/usr/bin/python3 -c 'import pyroute2'").returncode != 0
    assert "bpf" in ssh(lab, "findmnt -n -o FSTYPE /sys/fs/bpf")
    assert ssh(lab, "cat /etc/apt/sources.list.d/*.list").strip() == \
        "deb [trusted=yes] http://%s:8080/ ./" % lab.meta["controller"]
    assert ":8080" in ssh(lab, "apt-get update 2>&1")  # the lab's repository, the host's only apt source
    # the host's root is its own: a file it writes is not this machine's
    ssh(lab, "echo mine > /etc/wirespeed-lab-probe")
    assert not os.path.exists("/etc/wirespeed-lab-probe")
    assert os.path.exists(os.path.join(lab.disk(lab.hosts[0]), "etc", "wirespeed-lab-probe"))


def test_a_reboot_keeps_the_disk_and_forgets_the_kernel(lab, xdp_object):
    host = lab.hosts[0]
    ssh(lab, "echo on-disk > /var/lib/kept && mkdir /sys/fs/bpf/marker")
    subprocess.run(["ip", "-n", host["ns"], "link", "set", "dev", "eth0", "xdpgeneric", "obj", xdp_object,
                    "sec", "xdp"], check=True)
    subprocess.run(["tc", "-n", host["ns"], "qdisc", "add", "dev", "eth0", "clsact"], check=True)
    ssh(lab, "systemd-run --unit wslab-sleeper sleep 600")
    ifindex, boot_id = ssh(lab, "cat /sys/class/net/eth0/ifindex"), ssh(lab, "cat /proc/sys/kernel/random/boot_id")
    boots = lab.boots(host)

    lab.reboot(host["name"])

    assert lab.boots(host) == boots + 1
    assert "nspawn exited with status 133" in lab.console_text(host)
    assert ssh(lab, "cat /proc/sys/kernel/random/boot_id") != boot_id
    assert ssh(lab, "cat /var/lib/kept") == "on-disk\n"
    assert ssh(lab, "test -e /sys/fs/bpf/marker && echo present || echo gone").strip() == "gone"
    assert ssh(lab, "cat /sys/class/net/eth0/ifindex") != ifindex
    link = subprocess.run(["ip", "-n", host["ns"], "-d", "link", "show", "eth0"], capture_output=True, text=True,
                          check=True).stdout
    assert "prog/xdp" not in link
    qdiscs = subprocess.run(["tc", "-n", host["ns"], "qdisc", "show", "dev", "eth0"], capture_output=True, text=True,
                            check=True).stdout
    assert "clsact" not in qdiscs
    assert lab.ssh(host, "pgrep -x sleep").returncode != 0
    assert ssh(lab, "systemctl is-system-running --wait || true").strip() == "running"


def test_reboot_of_an_unknown_host_says_so(lab):
    proc = subprocess.run([sys.executable, NSPAWN_PY, "reboot", "nohost", "--dir", lab.dir], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "no host 'nohost'" in proc.stderr
