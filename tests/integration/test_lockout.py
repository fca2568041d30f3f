# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reboots and lockouts on hosts that boot systemd (tests/lab/nspawn.py), through site.yml as `ops` with become:
a rebooted host (`systemctl reboot`) comes back with its confirmed datapath; a change that cuts the controller
off is taken back by the host's own systemd timer (systemd-run); a confirmed change survives a reboot."""

import os
import re
import time

import pytest
import yaml
from conftest import TEST_BPF
from labplay import PLAYBOOKS, LabNet, booting_lab, playbook

SITE = os.path.join(PLAYBOOKS, "site.yml")
STATUS = os.path.join(PLAYBOOKS, "status.yml")
LOCKOUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "lockout.yml")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with booting_lab(tmp_path_factory, "lockout", 2) as fleet:
        yield fleet


def group_vars(lab, deny):
    data = {"firewall_interfaces": ["eth0"], "firewall_deny": deny,
            "firewall_port_rules": [{"proto": "udp", "port": 7001}], "ssh_limiter_interfaces": ["eth0"]}
    os.makedirs(os.path.join(lab.dir, "group_vars"), exist_ok=True)
    with open(os.path.join(lab.dir, "group_vars", "lab.yml"), "w") as fh:
        yaml.safe_dump(data, fh)


def chain(lab, host):
    """Names in chain order and mode of eth0 on a lab host, read over SSH by datapath_info."""
    out = playbook(lab, STATUS, limit=host["name"])
    read = out["Read programs, chains and counters"][host["name"]]
    assert "datapath" in read, read  # a failed read says why, not KeyError
    facts = read["datapath"]["eth0"]
    return [e["name"] for e in facts["chain"]], facts["xdp_mode"]


def reachable(lab, host):
    """Whether the host lets `ops` in over SSH within a few seconds (a black-holed host never answers)."""
    return lab.ssh(host, "true", timeout=8, sudo=False).returncode == 0


def test_a_reboot_brings_back_the_site_datapath(lab):
    group_vars(lab, [lab.peer["ip2"] + "/32"])
    out = playbook(lab, SITE)
    assert out["rc"] == 0, out["stats"]
    h1, h2 = lab.hosts
    before = chain(lab, h1)
    assert before == (["firewall", "ssh_limiter"], "native")
    lab.reboot(h1["name"])
    assert lab.ssh(h1, "ip -d link show eth0").stdout.count("prog/xdp") == 1  # restored before sshd came up
    assert chain(lab, h1) == before
    net = LabNet(lab, h1)
    assert net.udp(7001, 10) == 0 and net.udp(7000, 10) == 10  # the port rule, from its map
    again = playbook(lab, SITE, check=True, limit=h1["name"])  # programs and every map as site.yml wants them
    assert again["rc"] == 0 and again["stats"][h1["name"]]["changed"] == 0
    assert chain(lab, h2) == before  # the other host was never touched


def test_a_change_that_cuts_the_controller_off_is_taken_back_by_the_host(lab):
    group_vars(lab, [lab.peer["ip2"] + "/32"])
    assert playbook(lab, SITE)["rc"] == 0
    h1 = lab.hosts[0]
    timeout = 20
    started = time.monotonic()
    out = playbook(lab, LOCKOUT, limit=h1["name"], timeout=timeout,
                   drop_all_src=os.path.join(TEST_BPF, "drop_all.bpf.c"))
    assert out["stats"][h1["name"]]["unreachable"] >= 1 or out["stats"][h1["name"]]["failures"] >= 1
    assert out["Begin, armed"][h1["name"]]["timer"] == "systemd"  # systemd-run's timer, not the fallback process
    assert "Confirm" not in out or h1["name"] not in out["Confirm"] or not out["Confirm"][h1["name"]].get("confirmed")
    assert not reachable(lab, h1) or time.monotonic() - started > timeout
    deadline = started + timeout + 90  # bounds a failure; the loop ends on the host answering
    while time.monotonic() < deadline and not reachable(lab, h1):
        time.sleep(0.5)
    assert reachable(lab, h1), "the host did not take the change back within the timeout and 90 s"
    assert time.monotonic() - started >= timeout - 1  # by its timer, not before
    journal = lab.ssh(h1, "journalctl -b --no-pager -u 'wirespeed-confirm-*'").stdout
    assert re.search(r"wirespeed-confirm-\S+\.service", journal), journal  # the timer's service ran
    assert chain(lab, h1) == (["firewall", "ssh_limiter"], "native")  # drop-all gone, the datapath before it back
    assert LabNet(lab, h1).udp(7001, 10) == 0 and LabNet(lab, h1).udp(7000, 10) == 10
    note = lab.ssh(h1, "cat /var/lib/wirespeed/checkpoints/unconfirmed.json").stdout
    assert "not confirmed within %d s" % timeout in note


def test_a_confirmed_change_stays_and_survives_a_reboot(lab):
    group_vars(lab, [lab.peer["ip2"] + "/32"])
    assert playbook(lab, SITE)["rc"] == 0
    group_vars(lab, [lab.peer["ip2"] + "/32", "192.0.2.0/24"])
    out = playbook(lab, SITE, wirespeed_confirm_timeout=120)  # room for a loaded machine; nothing waits on it
    assert out["rc"] == 0, out["stats"]
    h1 = lab.hosts[0]
    assert out["Confirm (refused when XDP_ABORTED rose); the datapath becomes the one restored at boot"][
        h1["name"]]["confirmed"]
    lab.reboot(h1["name"])
    assert chain(lab, h1)[0] == ["firewall", "ssh_limiter"]
    again = playbook(lab, SITE, check=True, limit=h1["name"])  # the confirmed deny list came back, 192.0.2.0/24 too
    assert again["rc"] == 0 and again["stats"][h1["name"]]["changed"] == 0


PROBE_FAILS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "probe_fails.yml")
CONFIRM = "Confirm (refused when XDP_ABORTED rose); the datapath becomes the one restored at boot"


def test_a_failed_health_probe_takes_the_change_back_and_reports_it(lab):
    group_vars(lab, [lab.peer["ip2"] + "/32"])
    assert playbook(lab, SITE)["rc"] == 0
    h1, h2 = lab.hosts
    with open(os.path.join(lab.dir, "group_vars", "lab.yml")) as fh:
        data = yaml.safe_load(fh)
    data["firewall_port_rules"] = [{"proto": "udp", "port": 7000}]  # the change: now port 7000 drops
    with open(os.path.join(lab.dir, "group_vars", "lab.yml"), "w") as fh:
        yaml.safe_dump(data, fh)
    # the probe, not the timer, must take it back: a timeout no loaded machine reaches before the probe fails
    out = playbook(lab, SITE, limit=h1["name"], wirespeed_confirm_timeout=900, wirespeed_health_probe=PROBE_FAILS)
    assert out["rc"] != 0 and out["stats"][h1["name"]]["failures"] == 1
    report = out["Report the host as rolled back"][h1["name"]]["msg"]
    assert "probe failed - the service does not answer" in report and "was rolled back" in report
    assert CONFIRM not in out or h1["name"] not in out[CONFIRM] or not out[CONFIRM][h1["name"]].get("confirmed")
    net = LabNet(lab, h1)
    assert net.udp(7000, 10) == 10 and net.udp(7001, 10) == 0  # the datapath before the change, on its own
    assert LabNet(lab, h2).udp(7000, 10) == 10  # and the host outside the batch never changed


# Every bad value's sentence is proven on the filter that refuses it (tests/unit/plugins/filter/
# test_rollout_confirm.py: 0, soon, 90000, a missing probe); these two prove the wiring through site.yml: a value
# from the command line, and the controller-side file test the filter is handed.
@pytest.mark.parametrize("extra,message", [
    ({"wirespeed_confirm_timeout": "soon"}, "wirespeed_confirm_timeout is soon; give whole seconds"),
    ({"wirespeed_confirm_timeout": 30, "wirespeed_health_probe": "/nonexistent/probe.yml"},
     "wirespeed_health_probe /nonexistent/probe.yml is not a file on the controller"),
])
def test_bad_run_variables_are_refused_before_any_host_changes(lab, extra, message):
    group_vars(lab, [lab.peer["ip2"] + "/32", "198.51.100.0/24"])  # would change every host
    out = playbook(lab, SITE, **extra)
    assert out["rc"] != 0
    failed = out["Check the run's own variables before any host changes"]
    assert any(message in r.get("msg", "") for r in failed.values()), failed
    assert all(out["stats"].get(h["name"], {}).get("changed", 0) == 0 for h in lab.hosts)
