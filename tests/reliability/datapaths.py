# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath the reliability catalogue runs its cases against, and playbooks written for one case."""

import os
import re

import yaml
from labplay import REPO, playbook

TEST_BPF = os.path.join(REPO, "tests", "integration", "bpf")
ZOO = os.path.join(TEST_BPF, "maps_zoo.bpf.c")
TC = os.path.join(TEST_BPF, "tc_drop_port.bpf.c")
ROLE = os.path.join(REPO, "tests", "integration", "playbooks", "role.yml")
BASELINE = [
    {"wirespeed.datapath.xdp_program": {"interface": "eth0", "name": "zoo", "src": ZOO, "priority": 60}},
    {"wirespeed.datapath.xdp_map_entry": {"interface": "eth0", "name": "zoo", "maps": [
        {"map": "hash_v4", "key_type": "ipv4", "entries": ["192.0.2.1", "192.0.2.2"]},
        {"map": "lpm4", "entries": ["10.0.0.0/8"]}]}},
    {"wirespeed.datapath.tc_filter": {"interface": "eth0", "direction": "ingress", "name": "tcdrop",
                                      "src": TC, "priority": 20, "config": {"drop_port": 7002}}},
]


def baseline(lab):
    """Something in every kind of place on every lab host: the firewall role (the XDP chain and its maps), a
    second XDP program with filled maps, a TC filter. One ansible-playbook run: the role, then the plain tasks
    ("Step 1" to "Step 3"). Returns the run's results."""
    role = {"name": "Apply the firewall role", "ansible.builtin.include_role": {"name": "wirespeed.datapath.firewall"},
            "vars": {"firewall_interfaces": ["eth0"], "firewall_deny": [lab.peer["ip2"], "198.51.100.0/24"],
                     "firewall_port_rules": [{"proto": "udp", "port": 7001}]}}
    out = playbook(lab, write(lab, "baseline", BASELINE, first=[role]))
    assert out["rc"] == 0, out["stats"]
    return out


def write(lab, name, tasks, first=()):
    """A playbook of the given tasks (as {module: args}) against the lab, in the lab's folder; `first`: whole
    tasks (with their own names) that run before them."""
    path = os.path.join(lab.dir, "%s.yml" % re.sub(r"\W+", "_", name))
    plays = [{"name": name, "hosts": "lab", "gather_facts": False,
              "tasks": list(first) + [dict({"name": "Step %d" % (i + 1)}, **t) for i, t in enumerate(tasks)]}]
    with open(path, "w") as fh:
        yaml.safe_dump(plays, fh, sort_keys=False)
    return path
