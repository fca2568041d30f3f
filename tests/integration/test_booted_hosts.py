# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mission on hosts that boot systemd (tests/lab/nspawn.py), reached as `ops` with become and the distro's
/usr/bin/python3: site.yml installs what the host lacks from the lab's apt repository and converges, twice is
changed=0, a real reboot brings every program, chain order, mode and map entry back before network-pre.target,
the flow agent runs and exports (after install, after a reboot, restarted on a change), the metrics timer
refreshes wirespeed.prom, and rollback.yml -e rollback_to=none leaves no unit, timer, process or file of the collection.

The tests of this file run in order on one host, each starting from what the one before it left."""

import json
import os
import re
import time

import pytest
import yaml
from labplay import PLAYBOOKS, LabNet, booting_lab, playbook

SITE = os.path.join(PLAYBOOKS, "site.yml")
STATUS = os.path.join(PLAYBOOKS, "status.yml")
ROLLBACK = os.path.join(PLAYBOOKS, "rollback.yml")
RELEASE = os.environ.get("WIRESPEED_LAB_RELEASE", "bookworm")
FLOW_UNIT = "wirespeed-flow-export-eth0.service"
FLOWS = "/var/log/wirespeed/flows.jsonl"
METRICS_DIR = "/var/lib/prometheus/node-exporter"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with booting_lab(tmp_path_factory, "booted", 1, RELEASE) as fleet:
        yield fleet


def group_vars(lab, **extra):
    data = {"firewall_interfaces": ["eth0"], "firewall_deny": [lab.peer["ip2"] + "/32"],
            "firewall_port_rules": [{"proto": "udp", "port": 7001}], "ssh_limiter_interfaces": ["eth0"],
            "flow_export_interfaces": ["eth0"], "flow_export_idle_timeout": 1, "flow_export_active_timeout": 2}
    data.update(extra)
    os.makedirs(os.path.join(lab.dir, "group_vars"), exist_ok=True)
    with open(os.path.join(lab.dir, "group_vars", "lab.yml"), "w") as fh:
        yaml.safe_dump(data, fh)


def failed(out):
    """What failed in a run, for an assertion's message: {task: msg} of every failed host result."""
    return {name: r.get("msg") for name, hosts in out.items() if name not in ("stats", "rc")
            for r in hosts.values() if isinstance(r, dict) and (r.get("failed") or r.get("unreachable"))}


def ok(out):
    assert out["rc"] == 0, failed(out)
    return out


def sh(lab, command, host=None):
    out = lab.ssh(host or lab.hosts[0], command)
    assert out.returncode == 0, (command, out.stdout, out.stderr)
    return out.stdout


def unit(lab, name, *props):
    """systemctl show's properties of a unit on the host, as a dict."""
    out = sh(lab, "systemctl show %s -p %s" % (name, ",".join(props)))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def chain(lab, host):
    out = ok(playbook(lab, STATUS, limit=host["name"]))
    facts = out["Read programs, chains and counters"][host["name"]]["datapath"]["eth0"]
    return [e["name"] for e in facts["chain"]], facts["xdp_mode"]


def wait_for(what, predicate, seconds):
    """Poll an event on the host (a file, a unit state) until it holds; the bound is a failure, not a sleep."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "%s did not happen within %d s" % (what, seconds)
        time.sleep(0.3)


def flows_from(lab, source):
    """The flow records in the agent's output that come from `source`."""
    text = lab.ssh(lab.hosts[0], "cat %s 2>/dev/null" % FLOWS).stdout
    return [r for r in (json.loads(line) for line in text.splitlines() if line.startswith("{"))
            if source in json.dumps(r)]


def test_site_installs_from_the_distro_and_converges_then_changes_nothing(lab):
    host = lab.hosts[0]
    assert lab.ssh(host, "dpkg-query -W python3-pyroute2").returncode != 0  # the image lacks it
    group_vars(lab)
    ok(playbook(lab, SITE))
    # the host role installed Debian's own packages, from the lab's mirror
    assert re.match(r"python3-pyroute2\t\S+", sh(lab, "dpkg-query -W python3-pyroute2"))
    with open(os.path.join(lab.dir, "repo_http.log")) as fh:
        served = fh.read()
    assert re.search(r'"GET /(\./)?python3-pyroute2_\S+\.deb HTTP/1\.1" 200', served), served[-2000:]
    assert re.match(r"libbpf1(:\S+)?\t\S+", sh(lab, "dpkg-query -W libbpf1"))  # the image's iproute2 brought it
    assert chain(lab, host) == (["firewall", "ssh_limiter", "flow_export"], "native")
    net = LabNet(lab, host)
    assert net.udp(7001, 10) == 0 and net.udp(7000, 10) == 10
    again = playbook(lab, SITE)
    assert again["rc"] == 0 and again["stats"][host["name"]]["changed"] == 0, again["stats"]
    # a preview of a change shows it and changes nothing
    group_vars(lab, firewall_deny=[lab.peer["ip2"] + "/32", "192.0.2.0/24"])
    preview = playbook(lab, SITE, check=True, diff=True)
    assert preview["rc"] == 0 and preview["stats"][host["name"]]["changed"] >= 1
    assert "192.0.2.0/24" in json.dumps(preview)
    group_vars(lab)
    assert playbook(lab, SITE, check=True)["stats"][host["name"]]["changed"] == 0


def test_the_flow_agent_runs_exports_and_is_restarted_on_a_change(lab):
    state = unit(lab, FLOW_UNIT, "ActiveState", "MainPID", "UnitFileState")
    assert state["ActiveState"] == "active" and state["UnitFileState"] == "enabled", state
    LabNet(lab, lab.hosts[0]).udp(7000, 5)
    wait_for("a flow record of the peer in %s" % FLOWS, lambda: flows_from(lab, lab.peer["ip"]), 30)
    group_vars(lab, flow_export_idle_timeout=2)
    ok(playbook(lab, SITE))
    after = unit(lab, FLOW_UNIT, "ActiveState", "MainPID")
    assert after["ActiveState"] == "active" and after["MainPID"] != state["MainPID"], (state, after)
    assert "--idle 2 " in sh(lab, "cat /proc/%s/cmdline | tr '\\0' ' '" % after["MainPID"])


def test_a_reboot_brings_everything_back_before_network_pre(lab):
    host = lab.hosts[0]
    before = chain(lab, host)
    ifindex = sh(lab, "cat /sys/class/net/eth0/ifindex")
    boot_id = sh(lab, "cat /proc/sys/kernel/random/boot_id")
    sh(lab, f"test ! -e {FLOWS} || truncate -s 0 {FLOWS}")

    lab.reboot(host["name"])

    assert sh(lab, "cat /proc/sys/kernel/random/boot_id") != boot_id
    assert sh(lab, "cat /sys/class/net/eth0/ifindex") != ifindex  # new devices, nothing carried over
    restore = unit(lab, "wirespeed-restore.service", "ActiveState", "Result", "ActiveEnterTimestampMonotonic")
    pre = unit(lab, "network-pre.target", "ActiveEnterTimestampMonotonic")
    assert restore["ActiveState"] == "active" and restore["Result"] == "success", restore
    assert 0 < int(restore["ActiveEnterTimestampMonotonic"]) <= int(pre["ActiveEnterTimestampMonotonic"]), \
        (restore, pre)
    journal = sh(lab, "journalctl -b -o short-monotonic --no-pager")
    # a oneshot unit logs "Finished", a notify one "Started", once the datapath is attached
    finished = re.search(r"(Finished|Started) wirespeed-restore\.service", journal)
    reached = re.search(r"Reached target network-pre\.target", journal)
    assert finished and reached and finished.start() < reached.start()
    assert sh(lab, "systemctl is-system-running --wait || true").strip() == "running", \
        sh(lab, "systemctl --failed --no-legend")
    assert chain(lab, host) == before
    net = LabNet(lab, host)
    assert net.udp(7001, 10) == 0 and net.udp(7000, 10) == 10  # the port rule, from its map
    again = playbook(lab, SITE, check=True)  # every program, mode and map entry as site.yml wants them
    assert again["rc"] == 0 and again["stats"][host["name"]]["changed"] == 0, again["stats"]
    # the flow agent came back with the host and exports
    assert unit(lab, FLOW_UNIT, "ActiveState")["ActiveState"] == "active"
    wait_for("a flow record after the reboot", lambda: flows_from(lab, lab.peer["ip"]), 30)


def test_the_metrics_timer_refreshes_wirespeed_prom(lab):
    from prometheus_client.parser import text_string_to_metric_families
    ok(playbook(lab, STATUS, wirespeed_metrics_dir=METRICS_DIR, metrics_interval=5))
    timer = unit(lab, "wirespeed-metrics.timer", "ActiveState", "UnitFileState")
    assert timer == {"ActiveState": "active", "UnitFileState": "enabled"}, timer
    prom = METRICS_DIR + "/wirespeed.prom"
    first = sh(lab, "stat -c %%Y.%%s %s" % prom)  # the first refresh wrote it
    wait_for("a refresh of %s by the timer" % prom,
             lambda: lab.ssh(lab.hosts[0], "stat -c %%Y.%%s %s" % prom).stdout not in ("", first), 60)
    families = {f.name: f for f in text_string_to_metric_families(sh(lab, "cat %s" % prom))}
    assert any(name.startswith("wirespeed_") for name in families), sorted(families)


def collection_leftovers(lab):
    """Everything of the collection on the host: unit files, loaded units, processes, state, pins, XDP."""
    script = r"""
find /etc/systemd/system /run/systemd/system /run/systemd/transient -name 'wirespeed*' 2>/dev/null
systemctl list-units --all --no-legend --plain 'wirespeed*' | awk '{print "unit", $1, $2, $3}'
systemctl list-timers --all --no-legend 'wirespeed*' | grep -o 'wirespeed\S*' | sed 's/^/timer /'
ps -eo pid=,args= | grep -v grep | grep -E 'wirespeed|flow.agent' | sed 's/^/process /'
ls -A /var/lib/wirespeed 2>/dev/null | sed 's/^/state /'
ls -A /sys/fs/bpf/wirespeed 2>/dev/null | sed 's/^/pin /'
ls %s/wirespeed.prom 2>/dev/null
ip -d link show eth0 | grep -o 'prog/xdp id [0-9]*'
true
""" % METRICS_DIR
    # a unit systemd only remembers (no file, not running) is gone
    return [line for line in sh(lab, script).splitlines()
            if line.strip() and not re.match(r"unit \S+ not-found inactive$", line)]


def test_rollback_to_none_leaves_nothing_of_the_collection(lab):
    installed = collection_leftovers(lab)
    for expected in ("wirespeed-restore.service", FLOW_UNIT, "wirespeed-metrics.timer", "prog/xdp"):
        assert any(expected in line for line in installed), (expected, installed)
    ok(playbook(lab, ROLLBACK, rollback_to="none"))
    assert collection_leftovers(lab) == []
    assert LabNet(lab, lab.hosts[0]).udp(7001, 10) == 10
    # and nothing comes back at the next boot
    lab.reboot(lab.hosts[0]["name"])
    assert collection_leftovers(lab) == []
