# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""status_table: one row per program, XDP and TC alike, with the counters datapath_info read."""

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._report import COLUMNS, status_problems, status_table


def counters(passed, dropped):
    return {"aborted": {"packets": 0, "bytes": 0}, "drop": {"packets": dropped, "bytes": dropped * 60},
            "pass": {"packets": passed, "bytes": passed * 60}, "tx": {"packets": 0, "bytes": 0},
            "redirect": {"packets": 0, "bytes": 0}}


def health(aborted=0, insns=100, avg_ns=None):
    return {"aborted": aborted, "xlated_insns": insns, "jited_bytes": insns * 6, "verified_insns": insns,
            "bpf_stats": avg_ns is not None, "run_cnt": 10 if avg_ns else None, "avg_ns": avg_ns}


def reasons(**packets):
    return {name: {"packets": n, "bytes": n * 60} for name, n in packets.items()}


def tc_filter(pref, program, name="tcf"):
    return {"pref": pref, "handle": 1, "kind": "bpf", "name": name, "prog_id": 7, "managed": program is not None,
            "program": program}


DATAPATH = {"eth0": {
    "xdp_mode": "native", "managed": True, "xdp_prog": {"id": 1, "name": "wirespeed_root", "tag": "00"},
    "chain": [{"name": "firewall", "hook": "xdp", "position": 0}],
    "tc": {"ingress": [tc_filter(5, "mirror"), tc_filter(20, None, "cls_other")],
           "egress": [tc_filter(10, "tcdrop"), tc_filter(11, "old")]},
    "programs": {
        "firewall": {"hook": "xdp", "counters": counters(90, 10), "drop_reasons": reasons(deny_addr=10, none=0),
                     "health": health(insns=812, avg_ns=41.4)},
        "mirror": {"hook": "tc ingress", "counters": counters(40, 0), "drop_reasons": reasons(deny_port=0),
                   "health": health(insns=300)},
        "tcdrop": {"hook": "tc egress", "counters": counters(7, 3), "drop_reasons": reasons(deny_port=3),
                   "health": health(insns=120)},
        "old": {"hook": "tc egress", "counters": None,  # built without wirespeed/stats.h: no ws_stats
                "health": dict(health(insns=50), aborted=None)},
    }}}


def rows(lines):
    return [line.split() for line in lines[1:]]


def test_tc_programs_show_their_counters_like_xdp_ones():
    lines = status_table({"h1": {"wirespeed_status": {"datapath": DATAPATH}}}, ["h1"])
    assert lines[0].split() == [w for c in COLUMNS for w in c.split()]
    assert rows(lines) == [
        ["h1", "eth0", "xdp", "1", "firewall", "native", "90", "10", "ok", "812", "41", "deny_addr=10"],
        ["h1", "eth0", "tc", "ingress", "5", "mirror", "-", "40", "0", "ok", "300", "-", "-"],
        ["h1", "eth0", "tc", "ingress", "20", "cls_other", "(not", "wirespeed)", "-", "-", "-", "-", "-", "-", "-"],
        ["h1", "eth0", "tc", "egress", "10", "tcdrop", "-", "7", "3", "ok", "120", "-", "deny_port=3"],
        ["h1", "eth0", "tc", "egress", "11", "old", "-", "-", "-", "ok", "50", "-", "-"],
    ]


def test_a_steering_program_has_a_row_per_queue():
    datapath = {"eth0": dict(DATAPATH["eth0"], tc={}, chain=[{"name": "af_xdp", "hook": "xdp", "position": 0}],
                             programs={"af_xdp": {"hook": "xdp", "counters": counters(5, 0), "health": health(),
                                                  "xsk_queues": [
                                                      {"queue": 0, "socket": True, "bound": None, "redirected": 30,
                                                       "fallback": 2},
                                                      {"queue": 1, "socket": False, "bound": 0, "redirected": 0,
                                                       "fallback": 7}]}})}
    lines = status_table({"h1": {"wirespeed_status": {"datapath": datapath}}}, ["h1"])
    assert rows(lines)[1:] == [
        ["h1", "eth0", "xsk", "q0", "af_xdp:", "socket", "-", "2", "-", "-", "-", "-", "redirected=30"],
        ["h1", "eth0", "xsk", "q1", "af_xdp:", "no", "socket", "-", "7", "-", "-", "-", "-", "redirected=0"],
    ]


def test_columns_line_up():
    lines = status_table({"h1": {"wirespeed_status": {"datapath": DATAPATH}}}, ["h1"])
    start = lines[0].index("passed")
    assert [line[start:].split()[0] for line in lines[1:]] == ["90", "40", "-", "7", "-"]


def test_a_failed_host_is_one_row():
    lines = status_table({"h2": {"wirespeed_status": {"failed": True, "msg": "boom"}}}, ["h2"])
    assert rows(lines) == [["h2", "-", "-", "-", "FAILED:", "boom"]]


def unhealthy_datapath():
    datapath = {"eth0": dict(DATAPATH["eth0"], xdp_mode="generic", xdp_generic_unexpected=True,
                             programs=dict(DATAPATH["eth0"]["programs"]))}
    datapath["eth0"]["programs"]["firewall"] = dict(datapath["eth0"]["programs"]["firewall"],
                                                    health=health(aborted=12, insns=812))
    return datapath


def test_aborted_packets_and_an_unexpected_generic_mode_show_in_the_health_column():
    lines = status_table({"h1": {"wirespeed_status": {"datapath": unhealthy_datapath()}}}, ["h1"])
    assert rows(lines)[0][:9] == ["h1", "eth0", "xdp", "1", "firewall", "generic", "90", "10", "ABORTED=12,GENERIC"]
    assert rows(lines)[1][9] == "ok"  # a TC program is not touched by the interface's XDP mode


def test_problems_name_the_host_and_a_healthy_fleet_has_none():
    hostvars = {"h1": {"wirespeed_status": {"datapath": DATAPATH, "problems": []}},
                "h2": {"wirespeed_status": {"datapath": unhealthy_datapath(),
                                            "problems": ["eth0/firewall: 12 packets ended in XDP_ABORTED."]}},
                "h3": {"wirespeed_status": {"unreachable": True, "msg": "ssh: timed out"}}}
    assert status_problems(hostvars, ["h1"]) == []
    assert status_problems(hostvars, ["h1", "h2", "h3"]) == [
        "h2: eth0/firewall: 12 packets ended in XDP_ABORTED.", "h3: UNREACHABLE: ssh: timed out"]


def test_forwarder_rows_show_its_outcomes_and_far_ends_in_namespaces():
    datapath = {
        "vblue": {"xdp_mode": "native", "managed": True, "xdp_prog": {"id": 1, "name": "wirespeed_root", "tag": "0"},
                  "chain": [{"name": "l2_forwarder", "hook": "xdp", "position": 0}],
                  "programs": {"l2_forwarder": {
                      "hook": "xdp", "counters": counters(2, 0), "drop_reasons": reasons(),
                      "outcomes": {"forwarded": 205, "flooded": 3, "passed": 2, "unknown": 0},
                      "health": health(insns=90)}}},
        "blue:e": {"xdp_mode": "native", "managed": True, "netns": "blue",
                   "xdp_prog": {"id": 2, "name": "wirespeed_root", "tag": "0"},
                   "chain": [{"name": "l2_peer", "hook": "xdp", "position": 0}],
                   "programs": {"l2_peer": {"hook": "xdp", "counters": counters(210, 0), "health": health(insns=20)}}}}
    got = rows(status_table({"h1": {"wirespeed_status": {"datapath": datapath}}}, ["h1"]))
    assert got[0][:5] == ["h1", "blue:e", "xdp", "1", "l2_peer"] and got[0][6] == "210"
    assert got[1][4] == "l2_forwarder"
    assert got[1][-4:] == ["forwarded=205,", "flooded=3,", "passed=2,", "unknown=0"]


def test_a_load_balancer_shows_one_row_per_backend():
    datapath = {"eth0": {
        "xdp_mode": "native", "managed": True, "xdp_prog": {"id": 1, "name": "wirespeed_root", "tag": "00"},
        "chain": [{"name": "load_balancer", "hook": "xdp", "position": 0}],
        "programs": {"load_balancer": {
            "hook": "xdp", "counters": counters(5, 0), "drop_reasons": reasons(), "health": health(insns=400),
            "backends": [{"backend": "198.51.100.21", "state": "active", "service": "198.51.100.10 tcp/443",
                          "packets": 700, "bytes": 1},
                         {"backend": "198.51.100.22", "state": "draining", "service": "198.51.100.10 tcp/443",
                          "packets": 30, "bytes": 1}]}}}}
    lines = status_table({"h1": {"wirespeed_status": {"datapath": datapath}}}, ["h1"])
    assert rows(lines) == [
        ["h1", "eth0", "xdp", "1", "load_balancer", "native", "5", "0", "ok", "400", "-", "-"],
        ["h1", "eth0", "lb", "-", "load_balancer:", "198.51.100.10", "tcp/443", "->", "198.51.100.21", "(active)",
         "-", "700", "-", "-", "-", "-", "-"],
        ["h1", "eth0", "lb", "-", "load_balancer:", "198.51.100.10", "tcp/443", "->", "198.51.100.22", "(draining)",
         "-", "30", "-", "-", "-", "-", "-"],
    ]
