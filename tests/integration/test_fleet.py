# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml, rollback.yml and status.yml on a lab fleet of five hosts, proven by traffic from a peer."""

import os

import pytest
import yaml
from labplay import PLAYBOOKS, LabNet, playbook, running_lab

SITE = os.path.join(PLAYBOOKS, "site.yml")
ROLLBACK = os.path.join(PLAYBOOKS, "rollback.yml")
STATUS = os.path.join(PLAYBOOKS, "status.yml")
HOSTS = 3  # a fleet: one host lost, the others converge (bench/fleet.py measures 5 to 20)
APPLY = "Apply every program and map the roles asked for, in one call per host"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_lab(tmp_path_factory, "fleet", HOSTS) as lab:
        yield lab


def group_vars(lab, **extra):
    """Write the fleet's group variables: the firewall, the SSH limiter and the WireGuard filter on eth0."""
    data = {"firewall_interfaces": ["eth0"], "firewall_deny": ["192.0.2.0/24", "2001:db8:bad::/48"],
            "firewall_port_rules": [{"proto": "udp", "port": 7001}],
            "ssh_limiter_interfaces": ["eth0"], "wireguard_filter_interfaces": ["eth0"]}
    data.update(extra)
    os.makedirs(os.path.join(lab.dir, "group_vars"), exist_ok=True)
    with open(os.path.join(lab.dir, "group_vars", "lab.yml"), "w") as fh:
        yaml.safe_dump(data, fh)


def ok(tasks, hosts):
    stats = tasks["stats"]
    return all(stats[h]["failures"] == 0 and stats[h]["unreachable"] == 0 for h in hosts)


def verdicts(lab, hosts=None):
    """{host: (datagrams of 10 to port 7000 that arrived, of 10 to port 7001)}."""
    out = {}
    for host in lab.hosts:
        if hosts is None or host["name"] in hosts:
            net = LabNet(lab, host)
            out[host["name"]] = (net.udp(7000, 10), net.udp(7001, 10))
    return out


def diff_lines(result):
    """The +/-/~ lines of the maps of a host's one datapath_apply call."""
    lines = []
    for d in result.get("diff") or []:
        lines += [line for line in (d.get("prepared") or "").splitlines() if line[:1] in "+-~"]
    return lines


def test_fleet_converges_previews_rolls_back_and_survives_a_lost_host(fleet):
    names = [h["name"] for h in fleet.hosts]
    everyone = {n: (10, 10) for n in names}
    assert verdicts(fleet) == everyone  # the path is clear before anything runs

    group_vars(fleet)
    first = playbook(fleet, SITE)
    assert ok(first, names), first["stats"]
    assert all(first["stats"][n]["changed"] > 0 for n in names)
    assert verdicts(fleet) == {n: (10, 0) for n in names}  # the port rule drops 7001 everywhere

    second = playbook(fleet, SITE)
    assert ok(second, names)
    assert [second["stats"][n]["changed"] for n in names] == [0] * HOSTS

    # one more deny entry: the peer itself. The preview shows it, and only it, on every host.
    group_vars(fleet, firewall_deny=["192.0.2.0/24", "2001:db8:bad::/48", fleet.peer["ip"]])
    preview = playbook(fleet, SITE, check=True, diff=True)
    assert ok(preview, names)
    for n in names:
        assert diff_lines(preview[APPLY][n]) == ["+ %s" % fleet.peer["ip"]], preview[APPLY][n]
        assert preview["stats"][n]["changed"] == 1
    assert verdicts(fleet) == {n: (10, 0) for n in names}  # check mode changed nothing

    # apply it while one host is cut off: the others converge
    lost = fleet.hosts[-1]
    fleet.cut(lost)
    try:
        applied = playbook(fleet, SITE)
    finally:
        fleet.reconnect(lost)
    assert applied["stats"][lost["name"]]["unreachable"] > 0
    assert ok(applied, names[:-1])
    assert verdicts(fleet, names[:-1]) == {n: (0, 0) for n in names[:-1]}
    assert verdicts(fleet, [lost["name"]]) == {lost["name"]: (10, 0)}
    late = playbook(fleet, SITE, limit=lost["name"])
    assert ok(late, [lost["name"]])
    assert verdicts(fleet) == {n: (0, 0) for n in names}

    # roll back the last change everywhere: the peer passes again, the rest of the firewall stays
    back = playbook(fleet, ROLLBACK)
    assert ok(back, names)
    summary = back["One line per host"]["localhost"]["msg"]
    assert sorted(line.split(":")[0] for line in summary if "restored the datapath" in line) == sorted(names)
    assert verdicts(fleet) == {n: (10, 0) for n in names}

    # the status table: one row per program per host, with drops by reason
    status = playbook(fleet, STATUS)
    table = status["Status table"]["localhost"]["msg"]
    for n in names:
        rows = [r.split() for r in table if r.startswith(n + " ")]
        assert [r[4] for r in rows] == ["firewall", "ssh_limiter", "wireguard_filter"], table
        assert "deny_port=" in " ".join(rows[0])

    # remove everything, with one host unreachable: it is reported, the others are cleaned
    fleet.cut(lost)
    try:
        gone = playbook(fleet, ROLLBACK, rollback_to="none")
    finally:
        fleet.reconnect(lost)
    lines = gone["One line per host"]["localhost"]["msg"]
    assert any(line.startswith(lost["name"] + ": UNREACHABLE") for line in lines), lines
    assert all(ok for ok in (gone["stats"][n]["failures"] == 0 for n in names))
    assert verdicts(fleet) == dict(everyone, **{lost["name"]: (10, 0)})
    for host in fleet.hosts[:-1]:
        assert "xdp" not in fleet.ssh(host, "ip -d link show eth0").stdout.split("prog/")[-1][:3]
