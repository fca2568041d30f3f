# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection consumed as a user consumes it: `ansible-galaxy collection build` of a working tree (with the
folders a developer's checkout grows planted in it), installed from a requirements.yml into an empty project
directory with the ansible.cfg the docs give, an inventory and group_vars of the project's own, and
`ansible-playbook wirespeed.datapath.site` (then status, rollback) by FQCN against hosts that boot systemd,
connected as `ops` with become. Nothing of this checkout is on the Ansible or Python path."""

import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml
from conftest import REPO
from labplay import LabNet, booting_lab

BIN = os.path.dirname(sys.executable)
# folders that tools and runs leave in a checkout: none may reach the tarball
GENERATED = [".ansible/collections/x", "wirespeed-report/index.html", ".config/ansible-lint.yml", "build/x",
             ".lab/lab.json", "build/lab-boot/lab.json", "tests/output/x"]
RELEASE = os.environ.get("WIRESPEED_LAB_RELEASE", "bookworm")


def docs_ansible_cfg():
    """The ansible.cfg the docs give a user: the first ini block with [defaults] in README.md, else in
    docs/rollout.md."""
    for doc in ("README.md", os.path.join("docs", "rollout.md")):
        with open(os.path.join(REPO, doc)) as fh:
            for block in re.findall(r"```ini\n(.*?)```", fh.read(), re.S):
                if "[defaults]" in block:
                    return block
    pytest.fail("no ansible.cfg ([defaults] in an ini block) in README.md or docs/rollout.md")


def user_env(project):
    """A user's shell: the virtualenv's tools on PATH, nothing of this checkout on any path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(PATH=BIN + os.pathsep + env.get("PATH", ""), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(project, "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False", HOME=project)
    return env


def run(project, *args, timeout=900):
    proc = subprocess.run(list(args), cwd=project, env=user_env(project), capture_output=True, text=True,
                          timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output, host):
    found = re.search(r"^%s\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % host, output, re.M)
    assert found, output[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found.groups())))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    src = tmp_path_factory.mktemp("checkout") / "datapath"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(".venv", ".git", "build", ".lab"))
    for rel in GENERATED:
        os.makedirs(os.path.dirname(src / rel), exist_ok=True)
        (src / rel).write_text("generated\n")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out),
                           str(src)], capture_output=True, text=True, env=user_env(str(out)), check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [path] = [p for p in out.iterdir() if p.name.endswith(".tar.gz")]
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with booting_lab(tmp_path_factory, "userproject", 1, RELEASE) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def project(tarball, lab, tmp_path_factory):
    """An empty project directory made into a user's: requirements.yml, ansible.cfg, inventory, group_vars."""
    project = str(tmp_path_factory.mktemp("project"))
    with open(os.path.join(project, "requirements.yml"), "w") as fh:
        yaml.safe_dump({"collections": [{"name": str(tarball), "type": "file"}]}, fh)
    with open(os.path.join(project, "ansible.cfg"), "w") as fh:
        fh.write(docs_ansible_cfg())
    host = lab.hosts[0]
    with open(os.path.join(project, "hosts.ini"), "w") as fh:
        fh.write("[edge]\n%s ansible_host=%s\n\n[edge:vars]\nansible_user=ops\nansible_become=true\n"
                 "ansible_python_interpreter=/usr/bin/python3\nansible_ssh_private_key_file=%s\n"
                 "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
                 % (host["name"], host["ip"], os.path.join(lab.dir, "id_ed25519")))
    os.makedirs(os.path.join(project, "group_vars"))
    with open(os.path.join(project, "group_vars", "edge.yml"), "w") as fh:
        yaml.safe_dump({"firewall_interfaces": ["eth0"], "firewall_deny": [lab.peer["ip2"] + "/32"],
                        "firewall_port_rules": [{"proto": "udp", "port": 7001}]}, fh)
    rc, out = run(project, os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
                  "-p", "collections")
    assert rc == 0, out
    return project


def test_the_tarball_carries_no_generated_folder(tarball):
    with tarfile.open(tarball) as tar:
        members = tar.getnames()
    leaked = [m for m in members for folder in (".ansible", "wirespeed-report", ".config", "build", ".lab",
                                                "tests/output")
              if m == folder or m.startswith(folder + "/")]
    assert leaked == []
    assert "playbooks/site.yml" in members and "roles/host/tasks/main.yml" in members


def test_the_docs_ansible_cfg_is_valid(project):
    rc, out = run(project, os.path.join(BIN, "ansible-config"), "dump", "--only-changed")
    assert rc == 0, out
    assert "DEFAULT_FORKS" in out


def test_site_status_and_rollback_by_fqcn_from_the_project(project, lab):
    host = lab.hosts[0]
    playbook = os.path.join(BIN, "ansible-playbook")
    rc, out = run(project, playbook, "-i", "hosts.ini", "wirespeed.datapath.site")
    assert rc == 0, out[-5000:]
    assert recap(out, host["name"])["failed"] == 0
    listed = run(project, os.path.join(BIN, "ansible-galaxy"), "collection", "list", "wirespeed.datapath")[1]
    assert str(os.path.join(project, "collections")) in listed
    net = LabNet(lab, host)
    assert net.udp(7001, 10) == 0 and net.udp(7000, 10) == 10
    rc, out = run(project, playbook, "-i", "hosts.ini", "wirespeed.datapath.site")
    assert rc == 0 and recap(out, host["name"])["changed"] == 0, out[-5000:]
    with open(os.path.join(project, "group_vars", "edge.yml")) as fh:
        data = yaml.safe_load(fh)
    data["firewall_port_rules"] = [{"proto": "udp", "port": 7002}]
    with open(os.path.join(project, "group_vars", "edge.yml"), "w") as fh:
        yaml.safe_dump(data, fh)
    rc, out = run(project, playbook, "-i", "hosts.ini", "wirespeed.datapath.site", "--check", "--diff")
    assert rc == 0 and recap(out, host["name"])["changed"] >= 1 and "7002" in out, out[-5000:]
    assert net.udp(7001, 10) == 0 and net.udp(7002, 10) == 10  # the preview changed nothing
    rc, out = run(project, playbook, "-i", "hosts.ini", "wirespeed.datapath.status")
    assert rc == 0 and "firewall" in out, out[-5000:]
    rc, out = run(project, playbook, "-i", "hosts.ini", "wirespeed.datapath.rollback", "-e", "rollback_to=none")
    assert rc == 0, out[-5000:]
    assert net.udp(7001, 10) == 10
    assert "prog/xdp" not in lab.ssh(host, "ip -d link show eth0").stdout
