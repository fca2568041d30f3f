# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host role's pip path on lab hosts whose Python is a virtualenv without pyroute2: check mode, install,
idempotency, and site.yml bringing such a host up. The distribution path (Debian's packages from the host's
mirror, /usr/bin/python3, become) and the missing-piece sentences run on booting hosts: test_host_role_distro.py."""

import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO
from labplay import playbook, running_lab

HOST_BOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "host.yml")
SITE = os.path.join(REPO, "playbooks", "site.yml")


def _bare_python(path):
    """A virtualenv of the system Python without pyroute2: what a new host's interpreter looks like."""
    subprocess.run([sys.executable if not os.path.exists("/usr/bin/python3") else "/usr/bin/python3", "-m", "venv",
                    str(path)], check=True, timeout=120)
    python = os.path.join(str(path), "bin", "python")
    assert not _has_pyroute2(python)
    return python


def _has_pyroute2(python):
    return subprocess.run([python, "-c", "import pyroute2"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """pyroute2 as a wheel in a folder: the lab hosts have no route to a package index."""
    folder = tmp_path_factory.mktemp("wheels")
    version = importlib.metadata.version("pyroute2")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder),
                    "pyroute2==%s" % version], check=True, timeout=300)
    return "--no-index --find-links %s" % folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "hostrole", 2) as fleet:
        yield fleet


def _task(tasks, name):
    """The results of the role's task `name` (ansible names role tasks "<role> : <name>"), or {}."""
    found = [v for k, v in tasks.items() if k == name or k.endswith(" : " + name)]
    return found[0] if found else {}


def _ok(tasks):
    assert tasks["rc"] == 0 and all(s["failures"] == 0 and s["unreachable"] == 0 for s in tasks["stats"].values()), \
        tasks
    return tasks


def test_check_install_then_nothing_to_do(lab, wheels, tmp_path):
    python = _bare_python(tmp_path / "venv")
    fstab = tmp_path / "fstab"
    args = dict(ansible_python_interpreter=python, host_fstab=str(fstab), host_pip_extra_args=wheels)
    preview = _ok(playbook(lab, HOST_BOOK, check=True, **args))
    for host in lab.hosts:
        assert _task(preview, "Install pyroute2 with pip into the Python Ansible uses")[host["name"]]["changed"]
        assert _task(preview, "Keep the BPF filesystem mounted across reboots")[host["name"]]["changed"]
    assert not _has_pyroute2(python) and not fstab.exists()  # check mode changed nothing

    # the lab's hosts share one file system, so one venv: the first host installs, the others find it there
    first = _ok(playbook(lab, HOST_BOOK, limit=lab.hosts[0]["name"], **args))
    assert _task(first, "Install pyroute2 with pip into the Python Ansible uses")[lab.hosts[0]["name"]]["changed"]
    assert _has_pyroute2(python)
    assert "bpffs /sys/fs/bpf bpf " in fstab.read_text()
    assert all(s["changed"] == 0 for s in _ok(playbook(lab, HOST_BOOK, **args))["stats"].values())
    assert all(s["changed"] == 0 for s in _ok(playbook(lab, HOST_BOOK, check=True, **args))["stats"].values())
    assert fstab.read_text().count("/sys/fs/bpf") == 1


@pytest.mark.parametrize("extra,task,words", [
    # the namespace lab's hosts run no systemd (its inventory sets host_require_systemd=false): a real case here;
    # the other missing pieces are in test_host_role_distro.py, on hosts that boot
    ({"host_require_systemd": True}, "Check that systemd runs the host",
     ["does not run systemd (no /run/systemd/system)", "host_require_systemd"]),
])
def test_missing_piece_fails_with_one_sentence(lab, tmp_path, extra, task, words):
    host = lab.hosts[0]["name"]
    tasks = playbook(lab, HOST_BOOK, limit=host, host_fstab=str(tmp_path / "fstab"), **extra)
    assert tasks["rc"] != 0
    result = _task(tasks, task)[host]
    assert result["failed"], result
    assert result["msg"].count(". ") == 0 and result["msg"].endswith("."), result["msg"]  # one sentence
    for word in words:
        assert word in result["msg"], result["msg"]
    assert not (tmp_path / "fstab").exists()  # failed before any change


def _old_python():
    """A Python older than the modules' floor (3.9) that Ansible 2.19 still runs modules with (3.8): pyenv's, where
    this machine has one (the lab hosts share its root filesystem)."""
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip() \
        if shutil.which("pyenv") else ""
    found = sorted(glob.glob(os.path.join(root or "/nonexistent", "versions", "3.8.*", "bin", "python3.8")))
    return found[-1] if found else None


def test_a_python_older_than_the_floor_is_named_before_anything_changes(lab, tmp_path):
    python = _old_python()
    if python is None:
        pytest.skip("no Python 3.8 on this machine (pyenv's versions/3.8.*) to stand for a host's old Python")
    host = lab.hosts[0]["name"]
    tasks = playbook(lab, HOST_BOOK, limit=host, host_fstab=str(tmp_path / "fstab"), ansible_python_interpreter=python)
    assert tasks["rc"] != 0
    result = _task(tasks, "Check the Python version and that the tasks run as root")[host]
    assert result["failed"], result
    msg = result["msg"]
    assert msg.count(". ") == 0 and msg.endswith("."), msg  # one sentence
    for word in ("runs Python 3.8 (%s)" % python, "the modules need 3.9 or newer", "ansible_python_interpreter"):
        assert word in msg, msg
    assert not (tmp_path / "fstab").exists()  # failed before any change


def test_site_brings_up_a_host_without_pyroute2(lab, wheels, tmp_path):
    """site.yml runs the host role first, so the modules after it find pyroute2."""
    python = _bare_python(tmp_path / "venv")
    host = lab.hosts[0]["name"]  # one host: the lab's hosts would share the venv
    tasks = _ok(playbook(lab, SITE, limit=host, ansible_python_interpreter=python, host_fstab=str(tmp_path / "fstab"),
                         host_pip_extra_args=wheels, wirespeed_persistence=False))
    assert _task(tasks, "Install pyroute2 with pip into the Python Ansible uses")[host]["changed"]
    checkpoint = _task(tasks, "Checkpoint the datapath before the change (and arm the host's own rollback)")
    assert "programs" in checkpoint[host], checkpoint
    assert _has_pyroute2(python)
    skipped = _ok(playbook(lab, SITE, limit=host, ansible_python_interpreter=python, wirespeed_host_setup=False,
                           wirespeed_persistence=False))
    assert not _task(skipped, "Install pyroute2 with pip into the Python Ansible uses")


def test_a_pyroute2_older_than_the_floor_is_named_then_upgraded_with_pip(lab, wheels, tmp_path):
    """A Python whose pyroute2 is older than the floor: with the package source nothing changes and one sentence
    says what to do; with pip (a virtualenv's default) the role upgrades it."""
    old = tmp_path / "old-wheel"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(old), "pyroute2==0.7.1"],
                   check=True, timeout=300)
    python = _bare_python(tmp_path / "venv")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(old), "pyroute2==0.7.1"],
                   check=True, timeout=300)
    host = lab.hosts[0]["name"]
    fstab = tmp_path / "fstab"
    refused = playbook(lab, HOST_BOOK, limit=host, ansible_python_interpreter=python, host_fstab=str(fstab),
                       host_pyroute2_source="package")
    assert refused["rc"] != 0
    result = _task(refused, "Refuse a pyroute2 older than the floor that the distribution package cannot replace")
    msg = result[host]["msg"]
    assert result[host]["failed"] and msg.count(". ") == 0 and msg.endswith("."), msg
    assert "pyroute2 0.7.1 in %s" % python in msg and "0.7.2 or newer" in msg and "host_pyroute2_source" in msg
    assert not fstab.exists()  # refused before any change

    upgraded = _ok(playbook(lab, HOST_BOOK, limit=host, ansible_python_interpreter=python, host_fstab=str(fstab),
                            host_pip_extra_args=wheels))
    assert _task(upgraded, "Install pyroute2 with pip into the Python Ansible uses")[host]["changed"]
    found = subprocess.run([python, "-c", "import pyroute2; print(pyroute2.__version__)"], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert found == importlib.metadata.version("pyroute2")
