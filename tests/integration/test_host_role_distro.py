# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host role on a host that boots systemd (tests/lab/nspawn.py) and lacks pyroute2 and libbpf, reached as
`ops` with become and the distro's /usr/bin/python3: check mode, the install of the distribution's packages from
the host's apt mirror (the lab's repository), idempotency, and a clear sentence for each missing piece before
anything on the host changes."""

import os
import re

import pytest
from labplay import PLAYBOOKS, booting_lab, playbook

HOST_BOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "host.yml")
SITE = os.path.join(PLAYBOOKS, "site.yml")
RELEASE = os.environ.get("WIRESPEED_LAB_RELEASE", "bookworm")
INSTALL_PYROUTE2 = "Install pyroute2 from the distribution"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with booting_lab(tmp_path_factory, "hostrole", 1, RELEASE) as fleet:
        yield fleet


def _task(tasks, name):
    """The results of the role's task `name` (ansible names role tasks "<role> : <name>"), or {}."""
    found = [v for k, v in tasks.items() if k == name or k.endswith(" : " + name)]
    return found[0] if found else {}


def _ok(tasks):
    assert tasks["rc"] == 0 and all(s["failures"] == 0 and s["unreachable"] == 0 for s in tasks["stats"].values()), \
        tasks
    return tasks


def _installed(lab, package):
    out = lab.ssh(lab.hosts[0], "dpkg-query -W -f '${Status}' %s" % package).stdout
    return out == "install ok installed"


def _fstab(lab):
    return lab.ssh(lab.hosts[0], "cat /etc/fstab").stdout


def test_check_install_then_nothing_to_do(lab):
    name = lab.hosts[0]["name"]
    assert not _installed(lab, "python3-pyroute2")
    preview = _ok(playbook(lab, HOST_BOOK, check=True))
    # a fresh Debian has no python3-apt, which the apt module needs to preview: apt-get's simulation stands in
    assert _task(preview, "Preview the distribution packages with apt-get's simulation")[name]["changed"]
    assert _task(preview, "Keep the BPF filesystem mounted across reboots")[name]["changed"]
    assert not _installed(lab, "python3-pyroute2") and "/sys/fs/bpf" not in _fstab(lab)  # check mode changed nothing

    first = _ok(playbook(lab, HOST_BOOK))
    assert _task(first, INSTALL_PYROUTE2)[name]["changed"]
    assert _installed(lab, "python3-pyroute2") and _installed(lab, "libbpf1")
    assert lab.ssh(lab.hosts[0], "/usr/bin/python3 -c 'import pyroute2'").returncode == 0
    with open(os.path.join(lab.dir, "repo_http.log")) as fh:
        assert re.search(r"GET /(\./)?python3-pyroute2_\S+\.deb HTTP/1\.1\" 200", fh.read())  # the host's mirror
    assert "bpffs /sys/fs/bpf bpf " in _fstab(lab)
    assert all(s["changed"] == 0 for s in _ok(playbook(lab, HOST_BOOK))["stats"].values())
    assert all(s["changed"] == 0 for s in _ok(playbook(lab, HOST_BOOK, check=True))["stats"].values())
    assert _fstab(lab).count("/sys/fs/bpf") == 1


def test_bpffs_mounted_when_missing(lab):
    host = lab.hosts[0]
    assert lab.ssh(host, "umount /sys/fs/bpf").returncode == 0
    assert lab.ssh(host, "findmnt -n -t bpf /sys/fs/bpf || echo unmounted").stdout.strip() == "unmounted"
    tasks = _ok(playbook(lab, HOST_BOOK))
    assert _task(tasks, "Mount the BPF filesystem")[host["name"]]["changed"]
    assert "bpf" in lab.ssh(host, "findmnt -n -t bpf /sys/fs/bpf").stdout


@pytest.mark.parametrize("extra,task,words", [
    ({"host_btf_path": "/nonexistent/vmlinux"}, "Check the kernel's BTF, XDP and clsact",
     ["has no BTF", "/nonexistent/vmlinux", "CONFIG_DEBUG_INFO_BTF"]),
    ({"host_bpffs": "/nonexistent/bpffs"}, "Check that the BPF filesystem is mounted",
     ["could not mount the BPF filesystem at /nonexistent/bpffs"]),
    ({"ansible_python_interpreter": "/nonexistent/python3"}, "Check that the host has Python",
     ["has no Python 3", "/nonexistent/python3", "ansible_python_interpreter"]),
    ({"ansible_become": False}, "Check the Python version and that the tasks run as root",
     ["runs the tasks as uid 1000", "become", "ops"]),
])
def test_missing_piece_fails_with_one_sentence(lab, extra, task, words):
    host = lab.hosts[0]["name"]
    fstab = _fstab(lab)
    tasks = playbook(lab, HOST_BOOK, host_bpffs_persist=True, **extra)
    assert tasks["rc"] != 0
    result = _task(tasks, task)[host]
    assert result["failed"], result
    assert result["msg"].count(". ") == 0 and result["msg"].endswith("."), result["msg"]  # one sentence
    for word in words:
        assert word in result["msg"], result["msg"]
    assert _fstab(lab) == fstab  # failed before any change


def test_a_login_user_without_sudo_is_refused_before_anything_changes(lab):
    """A second login user of the host with the same key and no sudo rights: site.yml names it in one sentence
    (not as Ansible's "Missing sudo password" from the first task that becomes root)."""
    host = lab.hosts[0]
    made = lab.ssh(host, "id nosudo >/dev/null 2>&1 || { useradd -m -s /bin/sh nosudo && install -d -o nosudo -m 700 "
                         "/home/nosudo/.ssh && install -o nosudo -m 600 /home/ops/.ssh/authorized_keys "
                         "/home/nosudo/.ssh/authorized_keys; }")
    assert made.returncode == 0, made.stderr
    fstab = _fstab(lab)
    tasks = playbook(lab, SITE, host_bpffs_persist=True, ansible_user="nosudo")
    assert tasks["rc"] != 0
    result = _task(tasks, "Refuse a login user that cannot become root").get(host["name"])
    assert result, [(k, v.get(host["name"], {}).get("msg")) for k, v in tasks.items() if k not in ("stats", "rc")]
    assert result["failed"], result
    msg = result["msg"]
    assert msg.count(". ") == 0 and msg.endswith("."), msg  # one sentence
    for word in ("login user nosudo is not root and cannot run sudo without a password", "NOPASSWD",
                 "--ask-become-pass"):
        assert word in msg, msg
    assert _fstab(lab) == fstab and tasks["stats"][host["name"]]["changed"] == 0  # refused before any change
