# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection consumed as a user consumes it: `ansible-galaxy collection build` of a working tree (with the
folders a developer's checkout grows planted in it), installed from a requirements.yml into an empty project
directory with the ansible.cfg the docs give; and the README's quick start followed word for word (install, inventory,
group_vars, preview, converge, again, status, rollback, removal) by FQCN against a host that boots systemd, connected
as `ops` with become. Nothing of this checkout is on the Ansible or Python path."""

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile

import pytest
import yaml
from conftest import REPO
from labplay import booting_lab
from netlab import netns

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
def project(tarball, tmp_path_factory):
    """An empty project directory with a requirements.yml naming the tarball and the ansible.cfg the docs give."""
    project = str(tmp_path_factory.mktemp("project"))
    with open(os.path.join(project, "requirements.yml"), "w") as fh:
        yaml.safe_dump({"collections": [{"name": str(tarball), "type": "file"}]}, fh)
    with open(os.path.join(project, "ansible.cfg"), "w") as fh:
        fh.write(docs_ansible_cfg())
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
    rc, out = run(project, os.path.join(BIN, "ansible-galaxy"), "collection", "list", "wirespeed.datapath")
    assert rc == 0 and os.path.join(project, "collections") in out, out


def readme_quick_start():
    """The README's quick start as written: its setup lines, inventory.ini, group_vars/edge.yml and its commands."""
    with open(os.path.join(REPO, "README.md")) as fh:
        section = fh.read().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    shells = [body for lang, body in blocks if lang == "sh"]
    [inventory] = [body for lang, body in blocks if lang == "ini"]
    [variables] = [body for lang, body in blocks if lang == "yaml"]
    assert len(shells) == 2, blocks
    lines = (line.split("#", 1)[0].strip() for line in shells[1].splitlines())
    return shells[0], inventory, variables, [cmd for cmd in lines if cmd]


def tcp_reaches(lab, host, port):
    """A TCP connection from the lab's peer to host:port gets an answer (accepted or refused) within 2 s."""
    with netns(lab.peer["ns"]):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect((host["ip"], port))
        return True
    except ConnectionRefusedError:
        return True
    except socket.timeout:
        return False
    finally:
        sock.close()


def preview_next_change(project, env, preview, variables):
    """On a converged host, the preview of one more denied address shows that entry (and changes nothing)."""
    changed = yaml.safe_load(variables)
    changed["firewall_deny"] = changed["firewall_deny"] + ["203.0.113.99"]
    path = os.path.join(project, "group_vars", "edge.yml")
    with open(path, "w") as fh:
        yaml.safe_dump(changed, fh)
    try:
        proc = subprocess.run(shlex.split(preview), cwd=project, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
    finally:
        with open(path, "w") as fh:
            fh.write(variables)
    assert proc.returncode == 0 and "+ 203.0.113.99" in proc.stdout, proc.stdout[-5000:]
    assert "+ 203.0.113.7" not in proc.stdout  # only the change is shown


def test_the_readme_quick_start_word_for_word(tarball, lab, tmp_path_factory):
    """Every step of the README's quick start in an empty directory, by a user whose own SSH settings (key, known
    hosts) are their environment's: the only edits are the lab host's address in place of the example ones."""
    setup, inventory, variables, commands = readme_quick_start()
    home = str(tmp_path_factory.mktemp("home"))
    named = re.search(r"install (\S+\.tar\.gz)", setup)
    assert named and named.group(1) == tarball.name, (setup, tarball.name)  # the README names the real tarball
    shutil.copy(tarball, os.path.join(home, tarball.name))
    env = {k: v for k, v in user_env(home).items() if k != "ANSIBLE_COLLECTIONS_PATH"}  # the default path
    env.update(ANSIBLE_PRIVATE_KEY_FILE=os.path.join(lab.dir, "id_ed25519"), ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_SSH_COMMON_ARGS="-o UserKnownHostsFile=/dev/null")
    proc = subprocess.run(["bash", "-euc", setup + "\npwd"], cwd=home, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    project = proc.stdout.strip().splitlines()[-1]  # where the setup's `cd` left the user
    host = lab.hosts[0]
    hosts = [line for line in inventory.splitlines() if "ansible_host=" in line]
    assert hosts, inventory
    inventory = inventory.replace("\n".join(hosts), "edge1 ansible_host=%s" % host["ip"])
    with open(os.path.join(project, "inventory.ini"), "w") as fh:
        fh.write(inventory)
    with open(os.path.join(project, "group_vars", "edge.yml"), "w") as fh:
        fh.write(variables)
    port = yaml.safe_load(variables)["firewall_port_rules"][0]["port"]
    assert tcp_reaches(lab, host, port) and tcp_reaches(lab, host, port + 1)

    outputs = []
    for command in commands:
        proc = subprocess.run(shlex.split(command), cwd=project, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, "%s\n%s" % (command, out[-5000:])
        assert recap(out, "edge1")["failed"] == 0, out[-5000:]
        outputs.append((command, out))
        if command.endswith("site --check --diff"):  # a fresh host: the packages it would get, and why no more
            assert re.search(r"edge1: the preview stops after the host role: it would first install (libbpf and )?"
                             r"pyroute2, without which", out), out[-5000:]
            assert "prog/xdp" not in lab.ssh(host, "ip -d link show eth0").stdout  # and it changed nothing
            assert "pyroute2" not in lab.ssh(host, "dpkg -l python3-pyroute2 2>/dev/null | grep ^ii || true").stdout
        elif command.endswith("site"):
            assert not tcp_reaches(lab, host, port) and tcp_reaches(lab, host, port + 1), command
            if len([ran for ran, _out in outputs if ran.endswith("site")]) == 2:
                preview_next_change(project, env, commands[0], variables)
    runs = [out for command, out in outputs if command.endswith("site")]
    assert len(runs) == 2 and recap(runs[1], "edge1")["changed"] == 0, runs[1][-5000:]
    [status] = [out for command, out in outputs if command.endswith("status")]
    assert re.search(r"edge1\s.*firewall", status), status[-5000:]
    assert tcp_reaches(lab, host, port)  # rollback took the firewall back, then rollback_to=none removed it all
    assert "prog/xdp" not in lab.ssh(host, "ip -d link show eth0").stdout
