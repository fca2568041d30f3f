# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""egress_ratelimit, dscp_marking and conn_limiter (and, in the same runs, af_xdp's XDP steering) through site.yml
on a lab host: converge, idempotence, the status table with their counters and drop reasons, and rollback.yml
taking them away."""

import os
import sys

import pytest
import yaml
from conftest import REPO
from labplay import PLAYBOOKS, LabNet, failure, playbook, running_lab

sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
import traffic  # tests/lab: the traffic of the molecule scenarios

SITE = os.path.join(PLAYBOOKS, "site.yml")
ROLLBACK = os.path.join(PLAYBOOKS, "rollback.yml")
STATUS = os.path.join(PLAYBOOKS, "status.yml")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "tcroles", 1) as fleet:
        yield fleet


def group_vars(lab, data):
    os.makedirs(os.path.join(lab.dir, "group_vars"), exist_ok=True)
    with open(os.path.join(lab.dir, "group_vars", "lab.yml"), "w") as fh:
        yaml.safe_dump(data, fh)


def new_udp_flows(lab, host, port, flows):
    """One datagram from each of `flows` new sockets of the peer at once; how many arrived."""
    return traffic.newflows(lab, host, port, flows)["arrived"]


def filters(lab, host):
    return "".join(lab.ssh(host, "tc filter show dev eth0 %s" % d).stdout for d in ("ingress", "egress"))


def test_site_status_and_rollback(lab):
    host, name = lab.hosts[0], lab.hosts[0]["name"]
    assert new_udp_flows(lab, host, 7700, 20) == 20  # nothing limits new flows yet
    group_vars(lab, {
        "egress_ratelimit_interfaces": ["eth0"],
        "egress_ratelimit_rules": [{"destination": lab.peer["ip"] + "/32", "rate": "1mbit"}],
        "dscp_marking_interfaces": ["eth0"],
        "dscp_marking_rules": [{"proto": "udp", "port": "7000-7010", "dscp": "EF", "direction": "both"}],
        "conn_limiter_interfaces": ["eth0"], "conn_limiter_ports": [7700], "conn_limiter_protocols": ["udp"],
        "conn_limiter_max_new_per_second": 1, "conn_limiter_burst": 2,
        "af_xdp_interfaces": ["eth0"], "af_xdp_rules": [{"proto": "udp", "port": 7400}]})
    preview = playbook(lab, SITE, check=True, diff=True)
    assert preview["stats"][name]["failures"] == 0, preview["stats"]
    assert "wirespeed" not in filters(lab, host)  # the preview changed nothing

    first = playbook(lab, SITE)
    assert first["stats"][name]["failures"] == 0 and first["stats"][name]["changed"] > 0, failure(first)
    attached = filters(lab, host)
    for prog in ("conn_limiter", "dscp_marking_ingress", "dscp_marking_egress", "egress_ratelimit"):
        assert "wirespeed:" + prog in attached, attached
    second = playbook(lab, SITE)
    assert second["stats"][name]["failures"] == 0 and second["stats"][name]["changed"] == 0, second["stats"]

    # 20 new flows at once from one source: the bucket holds burst + 1 = 3
    assert new_udp_flows(lab, host, 7700, 20) in (3, 4)
    assert LabNet(lab, host).udp(7005, 10) == 10  # marked on ingress, still delivered
    assert LabNet(lab, host).udp(7400, 10) == 10  # steered, but no AF_XDP socket: the kernel gets it, counted

    table = playbook(lab, STATUS)["Status table"]["localhost"]["msg"]
    rows = {r.split()[5]: r for r in table if r.startswith(name + " ") and len(r.split()) > 5}
    assert {"conn_limiter", "dscp_marking_ingress", "dscp_marking_egress", "egress_ratelimit"} <= set(rows), table
    assert "conn_limit=" in rows["conn_limiter"], table
    queue = [r.split() for r in table if r.startswith(name + " ") and " xsk " in r]
    assert [q[3:6] + q[-1:] for q in queue] == [["q0", "af_xdp:", "no", "redirected=0"]], table
    assert int(queue[0][-6]) >= 10, table  # the fallback, in the passed column

    back = playbook(lab, ROLLBACK)
    assert back["stats"][name]["failures"] == 0, back["stats"]
    assert "wirespeed" not in filters(lab, host)
    assert "xdp" not in lab.ssh(host, "ip link show eth0").stdout
    assert new_udp_flows(lab, host, 7700, 20) == 20  # traffic as before
