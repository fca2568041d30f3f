# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health of the datapath: XDP_ABORTED per program, instruction counts, run statistics while kernel BPF stats are
on, and status.yml on a lab host running a program that aborts - unhealthy in the table, and a failed run with
wirespeed_fail_on_unhealthy."""

import contextlib
import json
import os
import re
import subprocess

import pytest
from conftest import TEST_BPF
from labplay import PLAYBOOKS, LabNet, playbook, running_lab
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info

STATUS = os.path.join(PLAYBOOKS, "status.yml")
XDP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "xdp.yml")
ROLE_BOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "role.yml")
ABORT_SRC = os.path.join(TEST_BPF, "abort_port.bpf.c")
AB_PINS = "/sys/fs/bpf/wirespeed/eth0/ab"  # the program "ab" on a lab host's eth0, where the engine pins it
ROLE = "wirespeed.datapath.metrics : "  # how a role's task names are reported


@contextlib.contextmanager
def bpf_stats(on):
    """kernel.bpf_stats_enabled set for the block, then put back as it was (it is host-wide)."""
    with open(info.BPF_STATS_SYSCTL) as fh:
        before = fh.read().strip()
    with open(info.BPF_STATS_SYSCTL, "w") as fh:
        fh.write("1" if on else "0")
    try:
        yield
    finally:
        with open(info.BPF_STATS_SYSCTL, "w") as fh:
            fh.write(before)


def health_of(dut, name):
    with netns(dut.dut):
        found = info.gather([dut.ifname], dut.bpffs, dut.state_dir)
        links = info.native_support()
    return found[dut.ifname]["programs"][name]["health"], info.problems(found, links)


def test_aborted_packets_are_counted_per_program_and_make_the_host_unhealthy(dut, objects):
    dut.deploy("dp", config={"drop_port": 7001}, priority=10)
    dut.deploy("ab", objects["build"](ABORT_SRC), config={"abort_port": 7003}, priority=15)
    assert dut.udp(7000, 5) == 5
    health, problems = health_of(dut, "ab")
    assert health["aborted"] == 0 and problems == []
    assert health["xlated_insns"] > 10 and health["jited_bytes"] > 0 and health["verified_insns"] > 0
    assert dut.udp(7003, 6) == 0  # aborted: the packets are gone
    health, problems = health_of(dut, "ab")
    assert health["aborted"] == 6
    assert problems == ["%s/ab: 6 packets ended in XDP_ABORTED, a program error (the xdp:xdp_exception "
                        "tracepoint shows where)." % dut.ifname]
    assert health_of(dut, "dp")[0]["aborted"] == 0  # the other program in the chain is fine


def chain_health(dut):
    with netns(dut.dut):
        return info.gather([dut.ifname], dut.bpffs, dut.state_dir)[dut.ifname]["xdp_health"]


def test_run_counts_and_time_per_run_only_while_kernel_bpf_stats_are_on(dut):
    dut.deploy("dp", config={"drop_port": 7001})
    with bpf_stats(False):
        dut.udp(7000, 3)
        root = chain_health(dut)
        assert root["bpf_stats"] is False and root["run_cnt"] is None and root["avg_ns"] is None
    with bpf_stats(True):
        assert dut.udp(7000, 8) == 8
        root = chain_health(dut)
        chained = health_of(dut, "dp")[0]
    assert root["bpf_stats"] is True and root["run_cnt"] >= 8 and root["avg_ns"] > 0  # the chain, per packet
    assert chained["run_cnt"] is None  # a tail call: the kernel does not time it on its own


def test_generic_mode_on_a_native_driver_is_a_problem_unless_meant(dut):
    dut.deploy("dp", config={"drop_port": 7001}, mode="generic")
    with netns(dut.dut):
        found = info.gather([dut.ifname], dut.bpffs, dut.state_dir)
        links = info.native_support()
        assert found[dut.ifname]["xdp_mode"] == "generic"
        problems = info.problems(found, links)
        assert len(problems) == 1 and "XDP runs in generic mode though its driver (veth)" in problems[0]
        assert info.problems(found, links, [dut.ifname]) == []


# status.yml on a lab host ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "health", 2) as fleet:
        yield fleet


def status(lab, **extra):
    out = playbook(lab, STATUS, **extra)
    rows = {}
    for line in out["Status table"]["localhost"]["msg"][1:]:
        cells = line.split()
        rows[(cells[0], cells[4])] = cells
    return out, rows


def test_status_shows_an_aborting_program_as_unhealthy_and_fails_when_asked(lab):
    sick, well = lab.hosts
    deployed = playbook(lab, XDP, prog_name="ab", prog_src=ABORT_SRC, prog_config={"abort_port": 7003})  # on both
    assert deployed["rc"] == 0 and all(deployed["Deploy"][h["name"]]["changed"] for h in lab.hosts), deployed["stats"]
    facts = deployed["Read the datapath"][sick["name"]]["ansible_facts"]["wirespeed_datapath"]
    assert facts["healthy"] is True and facts["datapath"]["eth0"]["programs"]["ab"]["health"]["aborted"] == 0

    out, rows = status(lab)
    assert out["rc"] == 0 and rows[(sick["name"], "ab")][8] == "ok" and rows[(well["name"], "ab")][8] == "ok"
    assert int(rows[(sick["name"], "ab")][9]) > 10  # xlated instructions

    assert LabNet(lab, sick).udp(7003, 4) == 0  # only the sick host gets the packets its program aborts on
    out, rows = status(lab)
    assert out["rc"] == 0  # without the option the table is all there is
    assert rows[(sick["name"], "ab")][8] == "ABORTED=4" and rows[(well["name"], "ab")][8] == "ok"
    assert out["Problems"]["localhost"]["msg"] == [
        "%s: eth0/ab: 4 packets ended in XDP_ABORTED, a program error (the xdp:xdp_exception tracepoint shows "
        "where)." % sick["name"]]

    failed, _rows = status(lab, wirespeed_fail_on_unhealthy=True)
    assert failed["rc"] != 0
    assert failed["Fail when a host is unhealthy"]["localhost"]["msg"].startswith("1 problem(s) in the fleet; %s: "
                                                                                  % sick["name"])
    healthy, _rows = status(lab, wirespeed_fail_on_unhealthy=True, wirespeed_hosts=well["name"])
    assert healthy["rc"] == 0, healthy["stats"]


def test_status_with_a_metrics_dir_exports_the_counters_through_the_metrics_role(lab):
    from prometheus_client.parser import text_string_to_metric_families

    host = lab.hosts[1]
    if lab.ssh(host, "test -d %s" % AB_PINS).returncode != 0:  # the test before deploys it on every host
        assert playbook(lab, XDP, target=host["name"], prog_name="ab", prog_src=ABORT_SRC,
                        prog_config={"abort_port": 7003})["rc"] == 0
    textfile, units = os.path.join(lab.dir, "textfile"), os.path.join(lab.dir, "units")
    os.makedirs(units, exist_ok=True)
    blocked = "/proc/wirespeed-textfile"  # a textfile directory that cannot be made, not even by root
    refused = playbook(lab, STATUS, wirespeed_hosts=host["name"], wirespeed_metrics_dir=blocked,
                       metrics_unit_dir=units)
    assert refused["rc"] != 0 and ROLE + "Check the textfile directory" in refused, sorted(refused)
    assert refused[ROLE + "Check the textfile directory"][host["name"]]["msg"].startswith(
        "metrics_dir %s is not there on this host; set metrics_dir (wirespeed_metrics_dir in status.yml)" % blocked)
    assert os.listdir(units) == []  # nothing changed
    assert not os.path.exists(textfile)  # the role makes the directory it is given
    out = playbook(lab, STATUS, wirespeed_hosts=host["name"], wirespeed_metrics_dir=textfile, metrics_unit_dir=units)
    assert out["rc"] == 0, out["stats"]
    written = out[ROLE + "Write the metrics and install their timer"][host["name"]]
    assert out[ROLE + "Create the textfile directory"][host["name"]]["changed"] and os.path.isdir(textfile)
    assert written["changed"] and written["path"] == os.path.join(textfile, "wirespeed.prom")
    assert sorted(os.listdir(units)) == ["timers.target.wants", "wirespeed-metrics.service", "wirespeed-metrics.timer"]
    with open(written["path"]) as fh:
        families = {f.name: f for f in text_string_to_metric_families(fh.read())}
    passed = [s for s in families["wirespeed_packets"].samples
              if s.labels["program"] == "ab" and s.labels["action"] == "pass"]
    assert len(passed) == 1 and passed[0].labels["interface"] == "eth0" and passed[0].labels["reason"] == ""
    again = playbook(lab, STATUS, wirespeed_hosts=host["name"], wirespeed_metrics_dir=textfile,
                     metrics_unit_dir=units)
    assert again["rc"] == 0 and again["stats"][host["name"]]["changed"] == 0


def chromium(*args):
    """Headless Chromium from Debian (root needs --no-sandbox); bounded in time."""
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_status_writes_a_report_that_a_browser_renders_with_the_drops_charted(lab, tmp_path):
    sick, well = lab.hosts
    applied = playbook(lab, ROLE_BOOK, role_under_test="firewall", firewall_interfaces=["eth0"],
                       firewall_port_rules=[{"proto": "udp", "port": 7001}], limit=well["name"])
    assert applied["rc"] == 0, applied["stats"]
    assert LabNet(lab, well).udp(7001, 7) == 0  # dropped by the port rule: reason deny_port, entry udp/7001
    report_dir = tmp_path / "report"
    out = playbook(lab, STATUS, wirespeed_report_dir=str(report_dir))
    assert out["rc"] == 0
    data = json.loads((report_dir / "status.json").read_text())
    hosts = {h["name"]: h for h in data["hosts"]}
    assert hosts[sick["name"]]["status"] == "unhealthy" and hosts[well["name"]]["status"] == "healthy"
    assert hosts[well["name"]]["drops_by_reason"]["deny_port"] >= 7
    assert hosts[well["name"]]["top_denied"][0]["entry"] == "udp/7001"
    assert hosts[well["name"]]["top_denied"][0]["packets"] >= 7

    dom = chromium("--dump-dom", (report_dir / "index.html").as_uri())
    assert dom.returncode == 0 and "</html>" in dom.stdout, dom.stderr[-2000:]
    section = dom.stdout.split('id="host-%s"' % well["name"])[1].split("</section>")[0]
    bars = re.findall(r'<g class="bar" data-label="([^"]+)" data-value="(\d+)"', section)
    assert ("deny_port", str(hosts[well["name"]]["drops_by_reason"]["deny_port"])) in bars
    assert any(label.startswith("udp/7001") and int(value) >= 7 for label, value in bars)
    assert 'class="badge unhealthy"' in dom.stdout.split('id="host-%s"' % sick["name"])[1].split("</section>")[0]
    shot = tmp_path / "report.png"  # outside the repository
    assert chromium("--window-size=1280,1600", "--screenshot=%s" % shot, (report_dir / "index.html").as_uri()
                    ).returncode == 0
    assert shot.stat().st_size > 10000
