# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-doc renders every plugin and role of the collection, with its options, examples and return values."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO
from docs_check import problems


@pytest.mark.parametrize("module,words", [
    ("xdp_program", ["interface", "priority", "config", "pin_path", "force", "verify", "EXAMPLES", "prog_id"]),
    ("datapath_info", ["interfaces", "counters", "managed"]),
    ("datapath_checkpoint", ["confirm_timeout", "confirm", "abort", "boot_datapath_updated"]),
    ("datapath_boot", ["unit_dir", "wirespeed.pyz", "network-pre.target"]),
])
def test_ansible_doc_renders(module, words):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"),
                           "wirespeed.datapath." + module], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    for word in words:
        assert word in proc.stdout


def test_every_plugin_and_role_is_documented():
    """Modules, filters, tests, lookups and roles: no error, no warning, nothing UNDOCUMENTED, nothing left out."""
    assert problems(os.path.join(REPO, "build", "collections"), REPO) == []


def test_the_check_finds_an_undocumented_filter(tmp_path):
    """The check above can fail: a copy of the collection with one filter's sidecar doc removed."""
    import shutil
    root = tmp_path / "ansible_collections" / "wirespeed" / "datapath"
    shutil.copytree(REPO, root, ignore=shutil.ignore_patterns(".venv", "build", ".git", ".lab", "tests", "bench",
                                                              "*.o", "__pycache__"))
    os.remove(root / "plugins" / "filter" / "status_table.yml")
    os.remove(root / "plugins" / "test" / "xdp_mode_impossible.yml")
    found = problems(str(tmp_path), str(root))
    assert any("filter wirespeed.datapath.status_table is UNDOCUMENTED" in p for p in found), found
    assert any("test wirespeed.datapath.xdp_mode_impossible is UNDOCUMENTED" in p for p in found), found


def test_the_alias_reaches_bpf_map_entry():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json",
                           "wirespeed.datapath.xdp_map_entry"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["wirespeed.datapath.xdp_map_entry"]["doc"]["module"] == "bpf_map_entry", doc


ROLES = ["firewall", "ssh_limiter", "wireguard_filter", "mirror", "egress_ratelimit", "dscp_marking", "conn_limiter",
         "preflight", "persistence", "host", "metrics", "flow_export", "af_xdp", "l2_forwarder",
         "load_balancer"]


def _yaml(path):
    import yaml
    with open(path) as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_readme_and_argument_specs_agree(role):
    base = os.path.join(REPO, "roles", role)
    options = _yaml(os.path.join(base, "meta", "argument_specs.yml"))["argument_specs"]["main"]["options"]
    defaults = _yaml(os.path.join(base, "defaults", "main.yml"))
    assert set(defaults) == set(options), "defaults and argument specs name different variables"
    for name, spec in options.items():
        assert name.startswith(role + "_"), name
        assert spec.get("description"), name
        assert defaults[name] == spec.get("default"), "%s: default %r in defaults/main.yml, %r in the spec" % (
            name, defaults[name], spec.get("default"))
    with open(os.path.join(base, "README.md")) as fh:
        readme = fh.read()
    if role != "preflight":  # internal; its README points at the spec
        for name in options:
            assert "`%s`" % name in readme, "%s is not in roles/%s/README.md" % (name, role)


def _ini_blocks(path):
    with open(path) as fh:
        return re.findall(r"```ini\n(.*?)```", fh.read(), re.S)


@pytest.mark.parametrize("doc", ["docs/rollout.md", "README.md"])
def test_the_ansible_cfg_of_the_docs_is_valid(doc, tmp_path):
    """Every ansible.cfg block of the docs, copied as it is, is read by Ansible without an error (an ini file has
    no comment after a value: `forks = 50  # ...` made every ansible command fail)."""
    blocks = _ini_blocks(os.path.join(REPO, doc))
    for number, block in enumerate(blocks):
        cfg = tmp_path / ("ansible%d.cfg" % number)
        cfg.write_text(block)
        env = dict(os.environ, ANSIBLE_CONFIG=str(cfg), ANSIBLE_NOCOLOR="1")
        done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-config"), "dump",
                               "--only-changed"], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0 and "ERROR" not in done.stderr, (doc, block, done.stderr)
        for line in block.splitlines():  # every setting of the block took its value
            if "=" in line and not line.lstrip().startswith(("#", ";")):
                key, value = (part.strip() for part in line.split("=", 1))
                if key == "forks":
                    assert "DEFAULT_FORKS(%s) = %s" % (cfg, value) in done.stdout, done.stdout
    if doc == "docs/rollout.md":
        assert blocks, "docs/rollout.md lost its ansible.cfg block"
