# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as Ansible users get it: the Galaxy tarball (without caches or developer files), installed
into an empty collections path, documented there, and running a playbook against the lab from that copy."""

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml
from conftest import REPO
from docs_check import ansible_doc, problems
from labplay import LabNet, playbook, running_lab

BIN = os.path.dirname(sys.executable)
INSTALLED_BOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "installed.yml")
# Planted in the copy that is built: none of them may reach the tarball.
PLANTED = [".pytest_cache/v/cache/nodeids", ".ruff_cache/0.6/1", "bench/out/veth.json", "build/collections/x",
           "plugins/filter/__pycache__/report.cpython-311.pyc", "tests/output/junit.xml", ".venv/bin/python",
           "files/bpf/firewall.bpf.o", "tests/integration/.pytest_cache/x", ".ansible/collections/x",
           "wirespeed-report/index.html", ".config/molecule/x.yml", ".lab/hosts/x", "tests/wirespeed-report/x.json"]
# Keys Ansible itself puts into a result (not the module's to document).
ANSIBLE_KEYS = {"changed", "failed", "msg", "diff", "invocation", "ansible_job_id", "started", "finished",
                "results_file", "stdout", "stderr", "stdout_lines", "stderr_lines", "warnings", "deprecations",
                "skipped", "false_condition", "skip_reason", "_ansible_no_log", "ansible_facts",
                # AnsibleModule.exit_json adds the stat of a result's existing "path" (bpf_map_entry's pin)
                "uid", "gid", "owner", "group", "mode", "state", "size", "secontext"}
FORBIDDEN = [".pytest_cache", ".ruff_cache", "bench", "build", ".venv", "__pycache__", "tests/output", ".ci",
             "Makefile", "ruff.toml", "requirements-dev.txt", ".git", "*.o", "*.pyc", ".ansible", "wirespeed-report",
             ".config", ".lab"]


def _env():
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    """ansible-galaxy collection build of a copy of this tree with caches and build output planted in it."""
    src = tmp_path_factory.mktemp("src") / "datapath"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(".venv", "build", ".git", ".lab"))
    for rel in PLANTED:
        os.makedirs(os.path.dirname(src / rel), exist_ok=True)
        (src / rel).write_text("planted\n")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out),
                           str(src)], capture_output=True, text=True, env=_env(), check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(os.path.join(REPO, "galaxy.yml")) as fh:
        version = yaml.safe_load(fh)["version"]
    path = out / ("wirespeed-datapath-%s.tar.gz" % version)
    assert path.exists(), os.listdir(out)
    return path


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory):
    """The tarball installed into an empty collections path; returns (collections path, collection root)."""
    where = tmp_path_factory.mktemp("collections")
    # --force: a copy installed in ~/.ansible/collections would otherwise make galaxy install nothing here
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--force",
                           "-p", str(where), str(tarball)], capture_output=True, text=True, env=_env(), check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = where / "ansible_collections" / "wirespeed" / "datapath"
    assert (root / "MANIFEST.json").exists() and not os.path.islink(root)
    return str(where), str(root)


def _members(tarball):
    with tarfile.open(tarball) as tar:
        return [m.name for m in tar.getmembers()]


def test_tarball_has_no_caches_or_developer_files(tarball):
    members = _members(tarball)
    leaked = [m for m in members for pattern in FORBIDDEN
              if m == pattern or m.startswith(pattern + "/") or fnmatch.fnmatch(os.path.basename(m), pattern)
              or "/%s/" % pattern in "/%s/" % m]
    assert leaked == []
    for shipped in ("LICENSE", "README.md", "meta/runtime.yml", "meta/execution-environment.yml", "bindep.txt",
                    "requirements.txt", "roles/host/tasks/main.yml", "plugins/filter/_status_table.yml",
                    "files/bpf/include/wirespeed/chain.h", "playbooks/site.yml"):
        assert shipped in members, shipped


def test_tarball_metadata_is_real(tarball):
    with tarfile.open(tarball) as tar:
        info = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
        license_text = tar.extractfile("LICENSE").read().decode()
    for key in ("repository", "documentation", "issues", "homepage"):
        assert info[key] and info[key].startswith("https://github.com/wirespeed/datapath"), (key, info[key])
    assert info["license"] == ["GPL-3.0-or-later"] and "GNU GENERAL PUBLIC LICENSE" in license_text
    assert "Version 3, 29 June 2007" in license_text


def test_installed_copy_documents_every_plugin_and_role(installed):
    assert problems(*installed) == []


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "installed", 1) as fleet:
        yield fleet


def _all_keys_documented(collections, results):
    """Every key of each module's result is in that module's RETURN (ansible-doc of the installed copy)."""
    rc, out, err = ansible_doc(collections, "--json", *("wirespeed.datapath." + m for m in results))
    assert rc == 0, err
    docs = json.loads(out)
    for module, result in results.items():
        documented = set(docs["wirespeed.datapath." + module]["return"] or {})
        extra = {k for k in result if not k.startswith("_ansible")} - ANSIBLE_KEYS - documented
        assert not extra, "%s returns %s, which its RETURN does not document" % (module, sorted(extra))


def test_playbook_from_the_installed_copy(lab, installed):
    collections, root = installed
    host = lab.hosts[0]
    args = dict(collections=collections, blocklist_src=os.path.join(root, "tests", "integration", "bpf",
                                                                    "plain_blocklist.bpf.c"),
                blocklist_entries=[lab.peer["ip"]])
    try:
        tasks = playbook(lab, INSTALLED_BOOK, **args)
        assert tasks["rc"] == 0, {name: results for name, results in tasks.items() if isinstance(results, dict)
                                  and any(isinstance(r, dict) and r.get("failed") for r in results.values())}
        paths = tasks["Where the collections come from"][host["name"]]["msg"]
        assert paths == [collections], paths  # this tree is not on the path: the installed copy ran
        deployed = tasks["Deploy the blocklist in the background"][host["name"]]
        assert deployed["changed"] and deployed["ansible_job_id"] and deployed["finished"], deployed
        assert tasks["Fill it through the old module name"][host["name"]]["added"] == 1
        _all_keys_documented(collections, {
            "xdp_program": deployed,
            "bpf_map_entry": tasks["Fill it through the old module name"][host["name"]]})
        assert LabNet(lab, host).udp(7000, 20) == 0  # the peer is listed: dropped
        shipped = tasks["Deploy a program shipped with the collection by its name, as a playbook in a user's "
                        "project does"][host["name"]]
        assert shipped["changed"] and LabNet(lab, host).udp(7444, 10) == 0  # wirespeed.datapath:drop_port.bpf.c
        unknown = tasks["A shipped program that does not exist"][host["name"]]["msg"]
        assert unknown.startswith("src wirespeed.datapath:no_such_program.bpf.c names no program shipped"), unknown
        again = playbook(lab, INSTALLED_BOOK, **args)
        assert again["rc"] == 0 and again["stats"][host["name"]]["changed"] == 0, again
        counters = {e["key"]: e["value"] for e in again["Read the drop counters through the new name"][host["name"]]
                    ["entries"]}
        assert counters[lab.peer["ip"]] >= 20
    finally:
        gone = playbook(lab, INSTALLED_BOOK, blocklist_state="absent", **args)
    assert gone["rc"] == 0, gone
    assert LabNet(lab, host).udp(7000, 10) == 10 and LabNet(lab, host).udp(7444, 10) == 10


def test_changelog_lists_each_change_once(tmp_path):
    """antsibull-changelog: the fragments lint clean, and a release of them names every new module once
    (in New Modules; a fragment announcing a new module would list it a second time)."""
    tool = os.path.join(BIN, "antsibull-changelog")
    if not os.path.exists(tool):
        pytest.fail("antsibull-changelog is not in %s; run `make deps` (requirements-dev.txt lists it)." % BIN)
    env = dict(_env(), PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([tool, "lint"], cwd=REPO, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    copy = tmp_path / "ansible_collections" / "wirespeed" / "datapath"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", "build", ".git", ".lab", "tests", "bench"))
    with open(os.path.join(REPO, "galaxy.yml")) as fh:
        version = yaml.safe_load(fh)["version"]
    proc = subprocess.run([tool, "release", "--version", version, "--date", "2026-01-01"], cwd=copy,
                          capture_output=True, text=True, env=dict(env, ANSIBLE_COLLECTIONS_PATH=str(tmp_path)),
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (copy / "CHANGELOG.rst").read_text()
    entries = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(entries) == len(set(entries)), [e for e in entries if entries.count(e) > 1]
    assert "New Modules" in text
    modules = sorted(os.path.basename(p)[:-3] for p in os.listdir(os.path.join(REPO, "plugins", "modules"))
                     if p.endswith(".py") and not p.startswith("_"))
    for module in modules:
        assert text.count("- wirespeed.datapath.%s - " % module) == 1, module
        assert not any(e.startswith("- %s - new module" % module) for e in entries), module
