# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xdp_program and datapath_info through ansible-playbook, over SSH, against the lab fleet."""

import json
import os
import re

import pytest
from conftest import BPF, TEST_BPF
from labplay import LabNet, running_lab
from labplay import playbook as run_playbook

PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "xdp.yml")
REFUSALS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "refusals.yml")
BLOCKLIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "blocklist.yml")
DROP_PORT = os.path.join(BPF, "examples", "drop_port.bpf.c")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "lab", 2) as fleet:
        yield fleet


def playbook(lab, check=False, diff=False, limit=None, book=PLAYBOOK, **extra):
    return run_playbook(lab, book, check=check, diff=diff, limit=limit, **extra)


def dropping(lab):
    """{host: (datagrams of 10 to port 7000 that arrived, of 10 to port 7001)}: (0, 10) where the dropper filters
    port 7000, (10, 10) where nothing filters."""
    return {h["name"]: (LabNet(lab, h).udp(7000, 10), LabNet(lab, h).udp(7001, 10)) for h in lab.hosts}


def with_dropper_on_7000(lab):
    """Deploy the dropper on port 7000 everywhere, unless the traffic shows every host filtering so already (the
    previous test leaves it so: a re-run would be a no-op; the callers' assertions read its config anyway)."""
    if dropping(lab) != {h["name"]: (0, 10) for h in lab.hosts}:
        playbook(lab, prog_src=DROP_PORT, prog_config={"drop_port": 7000})


def test_check_real_check_real(lab):
    changed = []
    for check in (True, False, True, False):
        tasks = playbook(lab, check=check, prog_src=DROP_PORT, prog_config={"drop_port": 7000})
        assert all(s["failures"] == 0 and s["unreachable"] == 0 for s in tasks["stats"].values()), tasks
        changed.append([tasks["Deploy"][h["name"]]["changed"] for h in lab.hosts])
    assert changed == [[True, True], [True, True], [False, False], [False, False]]


def test_traffic_and_counters_on_every_host(lab):
    with_dropper_on_7000(lab)
    for host in lab.hosts:
        net = LabNet(lab, host)
        assert net.udp(7000, 25) == 0
        assert net.udp(7001, 25) == 25
    tasks = playbook(lab, prog_src=DROP_PORT, prog_config={"drop_port": 7000})
    for host in lab.hosts:
        result = tasks["Deploy"][host["name"]]
        assert not result["changed"] and result["compiled_on"] == "controller"
        eth0 = tasks["Read the datapath"][host["name"]]["datapath"]["eth0"]
        assert eth0["managed"] and eth0["xdp_prog"]["name"] == "wirespeed_root"
        assert [p["name"] for p in eth0["chain"]] == ["dropper"]
        assert eth0["programs"]["dropper"]["counters"]["drop"]["packets"] >= 25


def test_check_diff_shows_the_config_change_and_changes_nothing(lab):
    with_dropper_on_7000(lab)
    tasks = playbook(lab, check=True, diff=True, prog_src=DROP_PORT, prog_config={"drop_port": 7002})
    for host in lab.hosts:
        result = tasks["Deploy"][host["name"]]
        assert result["changed"] and result["verified"]
        assert result["diff"]["before"]["config"] == {"drop_port": 7000}
        assert result["diff"]["after"]["config"] == {"drop_port": 7002}
        net = LabNet(lab, host)
        assert net.udp(7000, 10) == 0 and net.udp(7002, 10) == 10


def test_compile_on_host(lab):
    tasks = playbook(lab, limit="lab1", prog_name="hostbuilt", prog_priority=60, prog_src=DROP_PORT,
                     prog_compile_on="host", prog_config={"drop_port": 7003})
    result = tasks["Deploy"]["lab1"]
    assert result["compiled_on"] == "host" and result["changed"], result
    assert LabNet(lab, lab.hosts[0]).udp(7003, 10) == 0
    tasks = playbook(lab, limit="lab1", prog_name="hostbuilt", prog_state="absent")
    assert tasks["Deploy"]["lab1"]["changed"]


def test_clang_missing_on_controller_and_host(lab):
    tasks = playbook(lab, limit="lab1", prog_src=DROP_PORT, prog_clang="/nonexistent/clang",
                     prog_config={"drop_port": 7004})
    result = tasks["Deploy"]["lab1"]
    assert result["failed"]
    assert result["msg"].startswith("clang (/nonexistent/clang) was found neither on the controller nor on host lab1")
    assert LabNet(lab, lab.hosts[0]).udp(7000, 10) == 0  # the previous program still filters


def test_compile_error_fails_on_the_controller(lab):
    tasks = playbook(lab, limit="lab1", prog_src=os.path.join(TEST_BPF, "broken_syntax.bpf.c"))
    result = tasks["Deploy"]["lab1"]
    assert result["failed"] and "expected ';'" in result["msg"] and "error:" in result["detail"]
    assert LabNet(lab, lab.hosts[0]).udp(7000, 10) == 0


def test_absent_removes_and_is_idempotent(lab):
    with_dropper_on_7000(lab)
    first = playbook(lab, prog_state="absent")
    second = playbook(lab, prog_state="absent")
    for host in lab.hosts:
        assert first["Deploy"][host["name"]]["changed"]
        assert not second["Deploy"][host["name"]]["changed"]
        eth0 = second["Read the datapath"][host["name"]]["datapath"]["eth0"]
        assert eth0["xdp_prog"] is None and eth0["chain"] == []
        assert LabNet(lab, host).udp(7000, 10) == 10


def test_blocklist_from_a_feed_file(lab, tmp_path):
    """The seed-001 blocklist, unmodified, filled from a file; counters survive re-runs; diffs show one line each."""
    if dropping(lab) != {h["name"]: (10, 10) for h in lab.hosts}:  # the previous test removed the dropper
        playbook(lab, prog_state="absent")
    feed = tmp_path / "feed.txt"
    addresses = ["203.0.113.%d" % i for i in range(1, 50)] + [lab.peer["ip"]]
    feed.write_text("\n".join(addresses) + "\n")
    args = dict(book=BLOCKLIST, blocklist_src=os.path.join(TEST_BPF, "plain_blocklist.bpf.c"),
                blocklist_feed=str(feed))
    first = playbook(lab, **args)
    for host in lab.hosts:
        assert first["Fill the blocklist from the feed"][host["name"]]["added"] == 50
        net = LabNet(lab, host)
        assert net.udp(7000, 20) == 0  # the peer is listed: dropped
    second = playbook(lab, **args)
    for host in lab.hosts:
        assert not second["Deploy the blocklist program"][host["name"]]["changed"]
        assert not second["Fill the blocklist from the feed"][host["name"]]["changed"]
        counters = {e["key"]: e["value"] for e in second["Read the drop counters"][host["name"]]["entries"]}
        assert counters[lab.peer["ip"]] >= 20  # kept across the re-run
    # one address more, one less: the preview shows exactly those two lines and changes nothing
    feed.write_text("\n".join(addresses[1:] + ["198.51.100.99"]) + "\n")
    preview = playbook(lab, check=True, diff=True, **args)
    for host in lab.hosts:
        fill = preview["Fill the blocklist from the feed"][host["name"]]
        assert fill["changed"] and fill["diff"]["prepared"].splitlines() == ["+ 198.51.100.99", "- 203.0.113.1"]
        listed = {e["key"] for e in preview["Read the drop counters"][host["name"]]["entries"]}
        assert "203.0.113.1" in listed and "198.51.100.99" not in listed
    playbook(lab, limit=None, prog_name="blocklist", prog_state="absent")


TC_PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "tc.yml")
TC_DROP = os.path.join(TEST_BPF, "tc_drop_port.bpf.c")


def test_tc_filter_check_real_check_real_and_traffic(lab):
    changed = []
    for check in (True, False, True, False):
        tasks = playbook(lab, check=check, book=TC_PLAYBOOK, tc_src=TC_DROP, tc_config={"drop_port": 7010})
        changed.append([tasks["Deploy"][h["name"]]["changed"] for h in lab.hosts])
    assert changed == [[True, True], [True, True], [False, False], [False, False]]
    for host in lab.hosts:
        net = LabNet(lab, host)
        assert net.udp(7010, 10) == 0 and net.udp(7011, 10) == 10
    broken = playbook(lab, limit="lab1", book=TC_PLAYBOOK, tc_src=os.path.join(TEST_BPF, "broken_syntax.bpf.c"))
    assert broken["Deploy"]["lab1"]["failed"] and "expected ';'" in broken["Deploy"]["lab1"]["msg"]
    assert LabNet(lab, lab.hosts[0]).udp(7010, 10) == 0  # the deployed filter still works
    first = playbook(lab, book=TC_PLAYBOOK, tc_state="absent")
    second = playbook(lab, book=TC_PLAYBOOK, tc_state="absent")
    for host in lab.hosts:
        assert first["Deploy"][host["name"]]["changed"] and not second["Deploy"][host["name"]]["changed"]
        assert LabNet(lab, host).udp(7010, 10) == 10


def datapath_of(lab, host):
    """What eth0 runs, read on the host itself: the XDP program and the tc filters, with their ids."""
    return lab.ssh(host, "ip -d link show eth0; tc filter show dev eth0 ingress; tc filter show dev eth0 egress").stdout


@pytest.mark.parametrize("kind", ["xdp_program", "tc_filter"])
def test_src_and_object_together_are_refused_before_anything_is_shipped(lab, objects, kind):
    if kind == "xdp_program":
        book, args = PLAYBOOK, dict(prog_config={"drop_port": 7000})
        first = playbook(lab, limit="lab1", prog_src=DROP_PORT, **args)
        both = dict(prog_src=DROP_PORT, prog_object=objects["drop_port"], **args)
    else:
        book, args = TC_PLAYBOOK, dict(tc_config={"drop_port": 7010})
        first = playbook(lab, limit="lab1", book=book, tc_src=TC_DROP, **args)
        both = dict(tc_src=TC_DROP, tc_object=objects["tc_drop_port"], **args)
    assert first["stats"]["lab1"]["failures"] == 0, first
    before = datapath_of(lab, lab.hosts[0])
    tasks = playbook(lab, limit="lab1", book=book, **both)
    result = tasks["Deploy"]["lab1"]
    assert result.get("failed") and not result["changed"], result
    assert "compiled_on" not in result, result  # refused before compiling or shipping anything
    msg = result["msg"]
    assert re.search(r"\bsrc\b", msg) and re.search(r"\bobject\b", msg), msg
    assert "mutually exclusive" in msg and msg.endswith(".") and ". " not in msg, msg  # one sentence
    assert datapath_of(lab, lab.hosts[0]) == before
    if kind == "tc_filter":
        playbook(lab, limit="lab1", book=book, tc_state="absent")


def _no_temp_path(result):
    shown = json.dumps({k: result.get(k) for k in ("msg", "detail", "detail_lines")})
    assert "ansible-tmp" not in shown and "/.ansible/tmp" not in shown, shown


def test_messages_name_the_file_the_user_gave_not_the_shipped_copy(lab, tmp_path):
    text = tmp_path / "notes.bpf.o"
    text.write_text("not a BPF object, just text\n")
    reject = os.path.join(TEST_BPF, "verifier_reject.bpf.c")
    broken = os.path.join(TEST_BPF, "broken_syntax.bpf.c")
    xdp = [
        (dict(prog_object=str(text)), str(text), r"is not a loadable BPF object"),
        (dict(prog_src=reject), reject, r"the kernel verifier rejected program 'unchecked_read' from "),
        (dict(prog_src=reject, prog_compile_on="host"), reject, r"the kernel verifier rejected program"),
        (dict(prog_src=broken, prog_compile_on="host"), broken, r"expected ';'"),
    ]
    tc = [
        (dict(tc_src=os.path.join(TEST_BPF, "tc_reject.bpf.c")),
         os.path.join(TEST_BPF, "tc_reject.bpf.c"), r"the kernel verifier rejected program 'tc_unchecked' from "),
        (dict(tc_object=str(text)), str(text), r"is not a loadable BPF object"),
    ]
    # one run for all of them: each case is its own task call (a loop item), refused on its own
    tasks = run_playbook(lab, REFUSALS, limit="lab1", xdp_cases=[c[0] for c in xdp], tc_cases=[c[0] for c in tc])
    results = tasks["Deploy XDP"]["lab1"]["results"] + tasks["Deploy TC"]["lab1"]["results"]
    assert len(results) == len(xdp) + len(tc), results
    for result, (_case, named, pattern) in zip(results, xdp + tc):
        assert result.get("failed") and re.search(pattern, result["msg"]), result
        assert named in result["msg"], result["msg"]
        _no_temp_path(result)
