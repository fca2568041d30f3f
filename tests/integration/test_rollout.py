# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Staged rollout through site.yml on a lab fleet: batches gated on each host's health, a failed batch taken back
and the rollout stopped with the later batches untouched, and the run's own variables refused before any change."""

import json
import os
import subprocess

import pytest
import yaml
from labplay import BIN, PLAYBOOKS, REPO, LabNet, playbook, running_lab

SITE = os.path.join(PLAYBOOKS, "site.yml")
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks")
PROBE_TCP = os.path.join(HERE, "probe_peer_tcp.yml")
PROBE_UDP = os.path.join(HERE, "probe_udp_burst.yml")
TABLE = "The rollout, host by host"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "rollout", 3) as fleet:
        yield fleet


def group_vars(lab, deny, port_rules=({"proto": "udp", "port": 7001},)):
    data = {"firewall_interfaces": ["eth0"], "firewall_deny": list(deny), "firewall_port_rules": list(port_rules)}
    os.makedirs(os.path.join(lab.dir, "group_vars"), exist_ok=True)
    with open(os.path.join(lab.dir, "group_vars", "lab.yml"), "w") as fh:
        yaml.safe_dump(data, fh)


def staged(lab, **extra):
    run = {"wirespeed_batches": [1, "50%", "100%"], "wirespeed_bake_seconds": 1, "probe_peer_ns": lab.peer["ns"]}
    run.update(extra)
    return playbook(lab, SITE, **run)


def table(out):
    """The rollout table's rows as {host: [batch, outcome, rest of the line]}."""
    printed = [r["msg"] for r in out[TABLE].values() if "msg" in r]  # printed once, when the rollout stops or ends
    assert len(printed) == 1, out[TABLE]
    lines = printed[0]
    assert lines[0].split()[:3] == ["host", "batch", "outcome"]
    rows = {}
    for line in lines[1:]:
        host, batch, rest = line.split(None, 2)
        rows[host] = [batch, rest]
    return rows


def serves(lab, host):
    """Whether the peer reaches the host: UDP to the open port 7000 arrives, UDP to the denied 7001 does not."""
    net = LabNet(lab, host)
    return net.udp(7000, 10) == 10 and net.udp(7001, 10) == 0


def test_a_good_change_rolls_through_every_batch(lab):
    group_vars(lab, ["198.51.100.0/24"])
    out = staged(lab, wirespeed_health_probe=PROBE_TCP)
    assert out["rc"] == 0, out["stats"]
    rows = table(out)
    assert [rows[h["name"]][0] for h in lab.hosts] == ["1", "2", "3"]  # one canary, then half, then the rest
    assert all(rows[h["name"]][1].startswith("changed") and " ok " in rows[h["name"]][1] for h in lab.hosts), rows
    assert all(serves(lab, h) for h in lab.hosts)
    again = staged(lab, wirespeed_health_probe=PROBE_TCP)  # nothing to change: every host converged already
    assert again["rc"] == 0 and all(table(again)[h["name"]][1].startswith("converged") for h in lab.hosts), again
    assert all(again["stats"][h["name"]]["changed"] == 0 for h in lab.hosts)


def test_a_change_that_breaks_the_canary_stops_the_rollout_and_takes_the_canary_back(lab):
    group_vars(lab, ["198.51.100.0/24"])
    assert playbook(lab, SITE)["rc"] == 0
    canary, *rest = lab.hosts
    group_vars(lab, ["198.51.100.0/24", lab.peer["ip"] + "/32"])  # the bad change: the clients' address denied
    out = staged(lab, wirespeed_health_probe=PROBE_TCP)
    assert out["rc"] != 0
    rows = table(out)
    assert rows[canary["name"]][0] == "1" and rows[canary["name"]][1].startswith("rolled back")
    assert "UNHEALTHY: The peer reaches the host's service" in rows[canary["name"]][1]
    for host in rest:
        assert rows[host["name"]][0] == "-" and rows[host["name"]][1].startswith("untouched"), rows
        assert host["name"] not in out["stats"] or out["stats"][host["name"]]["changed"] == 0
    failed = out["Report the host as rolled back"][canary["name"]]["msg"]
    assert failed.startswith("not kept: the change begun at") and "was rolled back" in failed
    assert all(serves(lab, h) for h in lab.hosts)  # the canary on its previous datapath, the others never changed
    check = playbook(lab, SITE, check=True, limit=canary["name"])  # the checkpoint before the change is back
    assert check["stats"][canary["name"]]["changed"] >= 1  # ... so the bad change is still to come


def test_a_rise_of_the_drop_rate_fails_the_gate(lab):
    group_vars(lab, ["198.51.100.0/24"])
    assert playbook(lab, SITE)["rc"] == 0
    canary = lab.hosts[0]
    group_vars(lab, ["198.51.100.0/24"], [{"proto": "udp", "port": 7001}, {"proto": "udp", "port": 7000}])
    out = staged(lab, wirespeed_health_probe=PROBE_UDP, wirespeed_max_drop_rate_increase=20,
                 wirespeed_bake_seconds=2)
    assert out["rc"] != 0
    rows = table(out)
    assert rows[canary["name"]][1].startswith("rolled back"), rows
    assert "drops rose by" in rows[canary["name"]][1] and "ceiling 20/s" in rows[canary["name"]][1]
    assert "eth0/firewall" in rows[canary["name"]][1]  # the reason the drops rose by
    assert all(serves(lab, h) for h in lab.hosts)


def raw_playbook(lab, extra):
    """ansible-playbook with the default output: errors before the first task never reach a callback."""
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"))
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, SITE, "-e", json.dumps(extra)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


# One bad variable per way site.yml hands it over, end to end: the serial (wirespeed_batches against the fleet's
# size, wirespeed_serial), the pre-task's names (timeout with bake, ceiling, the probe's file test). Every other
# refusal goes through the same filters in tests/unit/plugins/filter/test_rollout_filters.py.
BAD = [
    ({"wirespeed_batches": [1, 1]}, "wirespeed_batches [1, 1] covers 2 of the 3 hosts of this run"),
    ({"wirespeed_serial": "soon"}, "wirespeed_serial has 'soon'"),
    ({"wirespeed_max_drop_rate_increase": 10}, "wirespeed_max_drop_rate_increase needs a window"),
    ({"wirespeed_health_probe": "/nonexistent/probe.yml"},
     "wirespeed_health_probe /nonexistent/probe.yml is not a file on the controller"),
    ({"wirespeed_confirm_timeout": 20, "wirespeed_bake_seconds": 15},
     "wirespeed_confirm_timeout is 20 but the bake takes 15 s"),
]


def refused(lab):
    """The BAD runs that were not refused with their sentence (none, when all is well)."""
    missed = []
    for extra, message in BAD:
        rc, text = raw_playbook(lab, extra)
        if rc == 0 or message not in " ".join(text.split()):
            missed.append((extra, rc, text[-1500:]))
    return missed


DENY_PORTS = "/sys/fs/bpf/wirespeed/eth0/firewall/maps/deny_ports"


def roles_ran(out, host):
    """Whether site.yml ran the firewall role on host (a converged host skips the whole converge in one step, so the
    role's task is not even listed for it)."""
    ran = out.get("Firewall", {}).get(host["name"])
    return ran is not None and not ran.get("skipped", False)


def test_a_converged_host_skips_its_roles_any_drift_brings_them_back_and_bad_run_variables_change_nothing(lab):
    group_vars(lab, ["198.51.100.0/24"])
    assert playbook(lab, SITE)["rc"] == 0
    noop = playbook(lab, SITE)
    assert noop["rc"] == 0 and not any(roles_ran(noop, h) for h in lab.hosts)
    assert all(noop["stats"][h["name"]]["changed"] == 0 for h in lab.hosts)
    h1, h2, h3 = lab.hosts
    # drift 1: a port rule deleted by hand from lab1's map; drift 2: lab2's XDP program detached by hand
    first = lab.ssh(h1, "bpftool map getnext pinned %s" % DENY_PORTS).stdout
    key = first.split("next key:")[1].split()
    lab.ssh(h1, "bpftool map delete pinned %s key hex %s" % (DENY_PORTS, " ".join(key)))
    lab.ssh(h2, "ip link set dev eth0 xdp off")
    assert LabNet(lab, h1).udp(7001, 10) == 10 and LabNet(lab, h2).udp(7001, 10) == 10  # the drift is real
    out = playbook(lab, SITE)
    assert out["rc"] == 0 and roles_ran(out, h1) and roles_ran(out, h2) and not roles_ran(out, h3)
    assert out["stats"][h1["name"]]["changed"] >= 1 and out["stats"][h2["name"]]["changed"] >= 1
    assert all(serves(lab, h) for h in lab.hosts)  # repaired: 7001 dropped again, 7000 open
    again = playbook(lab, SITE)
    assert not any(roles_ran(again, h) for h in lab.hosts)
    # a changed variable is a new intent (every host does the work again), but not with bad run variables:
    # each is refused before any host changes, so the next good run still finds the change to do everywhere
    group_vars(lab, ["198.51.100.0/24", "203.0.113.0/24"])
    missed = refused(lab)
    assert not missed, missed
    changed = playbook(lab, SITE)
    assert all(roles_ran(changed, h) and changed["stats"][h["name"]]["changed"] >= 1 for h in lab.hosts)
    forced = playbook(lab, SITE, wirespeed_full_converge=True)  # and the fast path can be turned off
    assert all(roles_ran(forced, h) and forced["stats"][h["name"]]["changed"] == 0 for h in lab.hosts)
