# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's demo: the collection's site.yml on a lab fleet, attackers and legitimate traffic,
the status table with drops by reason, and a fleet-wide rollback.

KEEP=1 leaves the lab up afterwards (inventory in .lab/inventory.ini; `make lab-down` removes it).
"""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from lab import Lab  # noqa: E402
from traffic import mirror, tcp, udp, wireguard  # noqa: E402

BIN = os.path.dirname(sys.executable)
PLAYBOOKS = os.path.join(REPO, "playbooks")
ENV = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
           ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
           ANSIBLE_DISPLAY_SKIPPED_HOSTS="false", ANSIBLE_DISPLAY_OK_HOSTS="false", ANSIBLE_FORKS="10")


def step(title):
    print("\n=== %s ===" % title, flush=True)


def ansible(lab, book, *args, ok=(0,), show_ok=False):
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, os.path.join(PLAYBOOKS, book)] + list(args)
    print("$ ansible-playbook -i %s playbooks/%s %s" % (os.path.relpath(lab.inventory), book, " ".join(args)),
          flush=True)
    env = dict(ENV, ANSIBLE_DISPLAY_OK_HOSTS="true") if show_ok else ENV
    proc = subprocess.run(cmd, env=env, text=True, check=False)
    if proc.returncode not in ok:
        raise SystemExit("ansible-playbook failed (exit %d)" % proc.returncode)


def inventory_vars(lab):
    """What the operator writes in group_vars: the four roles on every lab host's eth0."""
    data = {
        "firewall_interfaces": ["eth0"],
        "firewall_deny": [lab.peer["ip2"], "192.0.2.0/24", "2001:db8:bad::/48"],
        "firewall_port_rules": [{"proto": "udp", "port": 7001}],
        "ssh_limiter_interfaces": ["eth0"], "ssh_limiter_max_attempts": 3, "ssh_limiter_ban_time": 600,
        "wireguard_filter_interfaces": ["eth0"], "wireguard_filter_ports": [51820],
        "mirror_interfaces": ["eth0"], "mirror_target": "mon0", "mirror_protocol": "udp", "mirror_ports": [9999],
    }
    os.makedirs(os.path.join(lab.dir, "group_vars"), exist_ok=True)
    path = os.path.join(lab.dir, "group_vars", "lab.yml")
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    print("%s:\n%s" % (os.path.relpath(path), yaml.safe_dump(data, sort_keys=False)))


def traffic(lab):
    columns = ("host", "legit udp/7000 (peer)", "attacker (denied addr)", "udp/7001 (rule)", "ssh: new conns (6)",
               "wireguard ok/bad")
    print("%-5s %-22s %-22s %-15s %-22s %s" % columns)
    for host in lab.hosts:
        legit = udp(lab, host, 7000, 20, "peer")["arrived"]
        attacker = udp(lab, host, 7000, 20, "peer2")["arrived"]
        rule = udp(lab, host, 7001, 20, "peer")["arrived"]
        ssh = tcp(lab, host, 22, 6, "peer")["accepted"]
        wg = wireguard(lab, host, 51820)
        print("%-5s %-22s %-22s %-15s %-22s %d/%d delivered, %d/%d" % (
            host["name"], "%d/20 arrived" % legit, "%d/20 arrived" % attacker, "%d/20" % rule,
            "%d accepted" % ssh, wg["valid"]["arrived"], wg["valid"]["sent"], wg["malformed"]["arrived"],
            wg["malformed"]["sent"]))
    copies = mirror(lab, lab.hosts[0], 9999, 10)
    print("mirror on %s: %d/%d datagrams to udp/9999 delivered, %d copies on mon0"
          % (lab.hosts[0]["name"], copies["arrived"], copies["sent"], copies["copies"]))


def main():
    lab = Lab()
    if not lab.meta:
        step("Lab fleet: 3 hosts, each its own network and mount namespace with sshd; a peer sends traffic")
        lab.up(3, python=sys.executable)
    print("inventory: %s" % lab.inventory)
    try:
        step("Intent, as inventory variables")
        inventory_vars(lab)
        step("Preview on one host: programs and map entries that would change (nothing is attached)")
        ansible(lab, "site.yml", "--check", "--diff", "--limit", "lab1")
        step("Converge the fleet")
        ansible(lab, "site.yml")
        step("Again: nothing to change (changed=0 on every host)")
        ansible(lab, "site.yml")
        step("Attackers and legitimate traffic from the peer")
        traffic(lab)
        step("Status: programs in chain order, mode, and drops by reason per host")
        ansible(lab, "status.yml", show_ok=True)
        print("The same as a page with charts of the drops: %s (and status.json beside it)"
              % os.path.join(os.getcwd(), "wirespeed-report", "index.html"))
        step("Roll the fleet back to what it ran before site.yml (here: nothing)")
        ansible(lab, "rollback.yml", show_ok=True)
        print("(`-e rollback_to=none` removes every wirespeed program and leaves other tools' programs alone)")
        step("After the rollback: everything arrives again")
        for host in lab.hosts:
            print("%s: legit %d/20, attacker %d/20, udp/7001 %d/20" % (
                host["name"], udp(lab, host, 7000, 20, "peer")["arrived"],
                udp(lab, host, 7000, 20, "peer2")["arrived"], udp(lab, host, 7001, 20, "peer")["arrived"]))
    finally:
        if os.environ.get("KEEP") == "1":
            print("\nThe lab stays up: %s (remove it with `make lab-down`)." % lab.inventory)
        else:
            step("Lab down")
            lab.down()


if __name__ == "__main__":
    main()
