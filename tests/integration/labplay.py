# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running ansible-playbook against a lab fleet from tests, and sending traffic to its hosts."""

import contextlib
import json
import os
import re
import subprocess
import sys

from conftest import REPO
from netlab import Net

sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
from lab import Lab
from nspawn import BootLab

BIN = os.path.dirname(sys.executable)
CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")
PLAYBOOKS = os.path.join(REPO, "playbooks")

__all__ = ["BootLab", "Lab", "LabNet", "assert_once", "booting_lab", "failure", "playbook", "running_lab"]


def playbook(lab, book, check=False, diff=False, limit=None, collections=None, **extra):
    """Run a playbook; return {task name: {host: result}} over all plays, plus the recap under "stats"
    and the exit code under "rc". `collections`: a collections path to take wirespeed.datapath from instead
    of this tree (an installed copy), with nothing else on the Python path."""
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, book, "-e", json.dumps(extra)]
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    cmd += ["--limit", limit] if limit else []
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="wsjson", ANSIBLE_CALLBACK_PLUGINS=CALLBACKS,
               ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORKS="10", ANSIBLE_TIMEOUT="5")
    if collections:
        env.update(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False")
        env.pop("PYTHONPATH", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert "{" in proc.stdout, "ansible-playbook printed no JSON: %s %s" % (proc.stdout, proc.stderr)
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    tasks = {}
    for play in out["plays"]:
        for t in play["tasks"]:
            tasks.setdefault(t["task"]["name"], {}).update(t["hosts"])
    tasks["stats"] = out["stats"]
    tasks["rc"] = proc.returncode
    return tasks


@contextlib.contextmanager
def running_lab(tmp_path_factory, name, hosts):
    """A lab of `hosts` hosts for a test module, taken down afterwards even when the tests failed."""
    lab = Lab(str(tmp_path_factory.mktemp(name) / "lab"))
    lab.up(hosts, python=sys.executable)
    try:
        yield lab
    finally:
        lab.down()


@contextlib.contextmanager
def booting_lab(tmp_path_factory, name, hosts, release="bookworm"):
    """A lab of `hosts` hosts that boot systemd (tests/lab/nspawn.py), powered off and removed afterwards."""
    lab = BootLab(str(tmp_path_factory.mktemp(name) / "lab"))
    lab.up(hosts, release=release)
    try:
        yield lab
    finally:
        lab.down()


def LabNet(lab, host):
    """Traffic from the lab's peer namespace to a lab host."""
    return Net.existing(host["ns"], host["ip"], lab.peer["ns"], lab.peer["ip"])


def failure(tasks):
    """The message of the one failed task."""
    messages = [r.get("msg") for name, hosts in tasks.items() if name not in ("stats", "rc")
                for r in hosts.values() if isinstance(r, dict) and r.get("failed")]
    assert len(messages) == 1, messages
    return messages[0] if isinstance(messages[0], str) else " ".join(messages[0])


def assert_once(pattern, message):
    """The message matches the pattern exactly once, and says nothing twice in a row ("X: X: ...")."""
    assert len(re.findall(pattern, message)) == 1, message
    doubled = re.search(r"(\S.{15,}?)(?:: |\n)\1", message)
    assert doubled is None, "said twice: %r in %s" % (doubled.group(1), message)
