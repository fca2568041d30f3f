# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's demo: a lab fleet, a previewed and deployed XDP datapath, traffic, counters, removal.

KEEP=1 leaves the lab up afterwards (inventory in .lab/inventory.ini; `make lab-down` removes it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from lab import Lab  # noqa: E402
from netlab import Net  # noqa: E402

PLAYBOOK = os.path.join(HERE, "demo.yml")
BIN = os.path.dirname(sys.executable)
ENV = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
           ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")


def step(title):
    print("\n=== %s ===" % title, flush=True)


def ansible(lab, *args, quiet=False):
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, PLAYBOOK] + list(args)
    print("$ ansible-playbook -i %s %s" % (os.path.relpath(lab.inventory), " ".join(
        [os.path.relpath(PLAYBOOK)] + list(args))), flush=True)
    env = ENV
    if quiet:
        env = dict(ENV, ANSIBLE_STDOUT_CALLBACK="wsjson",
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(REPO, "tests", "integration", "callback_plugins"))
    proc = subprocess.run(cmd, env=env, text=True, stdout=subprocess.PIPE if quiet else None, check=False)
    if proc.returncode != 0:
        raise SystemExit("ansible-playbook failed (exit %d)" % proc.returncode)
    return json.loads(proc.stdout[proc.stdout.index("{"):]) if quiet else None


def traffic(lab):
    print("%-6s %-16s %14s %14s" % ("host", "address", "udp/7000 in", "udp/7001 in"))
    for host in lab.hosts:
        net = Net.existing(host["ns"], host["ip"], lab.peer["ns"], lab.peer["ip"])
        print("%-6s %-16s %10d/50 %10d/50" % (host["name"], host["ip"], net.udp(7000, 50), net.udp(7001, 50)))


def status(lab):
    out = ansible(lab, "-e", "demo_state=present", quiet=True)
    facts = next(t for t in out["plays"][1]["tasks"] if t["task"]["name"] == "Datapath facts of eth0")["hosts"]
    print("%-6s %-8s %-16s %10s %10s" % ("host", "mode", "program", "passed", "dropped"))
    for name in sorted(facts):
        eth0 = facts[name]["datapath"]["eth0"]
        for prog in eth0["chain"]:
            counters = eth0["programs"][prog["name"]]["counters"]
            print("%-6s %-8s %-16s %10d %10d" % (name, eth0["xdp_mode"], prog["name"],
                                                 counters["pass"]["packets"], counters["drop"]["packets"]))


def main():
    lab = Lab()
    if not lab.meta:
        step("Lab fleet: 3 hosts, each its own network and mount namespace with sshd")
        lab.up(3, python=sys.executable)
    print("inventory: %s" % lab.inventory)
    try:
        step("Before: every datagram arrives")
        traffic(lab)
        step("Preview: what would change on each host (nothing is attached)")
        ansible(lab, "--check", "--diff", "--limit", "lab1")
        step("Deploy the datapath to the fleet")
        ansible(lab)
        step("Again: nothing to change (changed=0)")
        ansible(lab)
        step("Traffic from the peer: UDP to 7000 is dropped at XDP, 7001 arrives")
        traffic(lab)
        step("Counters per host and program (datapath_info)")
        status(lab)
        step("Remove the datapath: the chain and its root go away")
        ansible(lab, "-e", "demo_state=absent")
        traffic(lab)
    finally:
        if os.environ.get("KEEP") == "1":
            print("\nThe lab stays up: %s (remove it with `make lab-down`)." % lab.inventory)
        else:
            step("Lab down")
            lab.down()


if __name__ == "__main__":
    main()
