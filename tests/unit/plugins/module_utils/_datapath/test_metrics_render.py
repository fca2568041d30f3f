# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""metrics.render: node_exporter's textfile format, read back by prometheus_client's own parser."""

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.host import metrics


def counters(passed, dropped, aborted=0):
    zero = {"packets": 0, "bytes": 0}
    return {"aborted": {"packets": aborted, "bytes": aborted * 60}, "drop": {"packets": dropped, "bytes": dropped * 60},
            "pass": {"packets": passed, "bytes": passed * 100}, "tx": zero, "redirect": zero}


DATAPATH = {
    "eth0": {"xdp_mode": "native", "managed": True, "xdp_prog": {"id": 1, "name": "wirespeed_root"},
             "xdp_generic_unexpected": False,
             "xdp_health": {"run_cnt": 200, "avg_ns": 50.0, "xlated_insns": 40},
             "programs": {
                 "firewall": {"hook": "xdp", "counters": counters(90, 10),
                              "drop_reasons": {"none": {"packets": 0, "bytes": 0},
                                               "deny_addr": {"packets": 7, "bytes": 420},
                                               "deny_port": {"packets": 1, "bytes": 60}},
                              "health": {"xlated_insns": 812, "run_cnt": None, "avg_ns": None}},
                 "mirror": {"hook": "tc ingress", "counters": counters(40, 0, aborted=0),
                            "health": {"xlated_insns": 300, "run_cnt": 40, "avg_ns": 25.0}},
                 "foreign-ish": {"hook": "xdp", "counters": None, "health": {"xlated_insns": None}}}},
    # a label value that needs escaping
    'we"ird\\0': {"xdp_mode": "generic", "managed": False, "xdp_prog": {"id": 9, "name": "other"},
                  "xdp_generic_unexpected": True, "programs": {}},
}
FILL = {("eth0", "firewall", "deny_v4"): (3, 1024)}


def parse(text):
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        out[family.name] = family.type
    return out


def value(found, name, **labels):
    return found[(name, tuple(sorted(labels.items())))]


def test_the_text_parses_and_every_family_has_its_type():
    found = parse(metrics.render(DATAPATH, FILL, ["eth0/x: 1 packets ended in XDP_ABORTED."], 1796212800.25))
    assert found["wirespeed_packets"] == "counter" and found["wirespeed_map_entries"] == "gauge"
    assert value(found, "wirespeed_problems") == 1
    assert value(found, "wirespeed_metrics_timestamp_seconds") == 1796212800.25


def test_packets_by_action_and_drops_by_reason_add_up():
    found = parse(metrics.render(DATAPATH, FILL, [], 0))
    where = {"interface": "eth0", "hook": "xdp", "program": "firewall"}
    assert value(found, "wirespeed_packets_total", action="pass", reason="", **where) == 90
    assert value(found, "wirespeed_packets_total", action="drop", reason="deny_addr", **where) == 7
    assert value(found, "wirespeed_packets_total", action="drop", reason="deny_port", **where) == 1
    assert value(found, "wirespeed_packets_total", action="drop", reason="none", **where) == 2  # 10 - 7 - 1
    drops = sum(v for k, v in found.items() if isinstance(k, tuple) and k[0] == "wirespeed_packets_total"
                and ("action", "drop") in k[1] and ("program", "firewall") in k[1])
    assert drops == 10
    assert value(found, "wirespeed_bytes_total", action="pass", reason="", **where) == 9000
    tc = {"interface": "eth0", "hook": "tc ingress", "program": "mirror"}
    assert value(found, "wirespeed_packets_total", action="pass", reason="", **tc) == 40
    assert value(found, "wirespeed_packets_total", action="aborted", reason="", **tc) == 0


def test_map_fill_program_size_and_run_time():
    found = parse(metrics.render(DATAPATH, FILL, [], 0))
    labels = {"interface": "eth0", "program": "firewall", "map": "deny_v4"}
    assert value(found, "wirespeed_map_entries", **labels) == 3
    assert value(found, "wirespeed_map_max_entries", **labels) == 1024
    assert value(found, "wirespeed_program_xlated_instructions", interface="eth0", hook="xdp",
                 program="firewall") == 812
    root = {"interface": "eth0", "hook": "xdp", "program": "wirespeed_root"}
    assert value(found, "wirespeed_program_runs_total", **root) == 200
    assert abs(value(found, "wirespeed_program_run_seconds_total", **root) - 200 * 50e-9) < 1e-12
    assert value(found, "wirespeed_program_runs_total", interface="eth0", hook="tc ingress", program="mirror") == 40
    assert not any(isinstance(k, tuple) and k[0] == "wirespeed_program_runs_total" and ("program", "firewall") in k[1]
                   for k in found)  # a tail call the kernel does not time has no run counter


def test_label_values_are_escaped_and_the_generic_flag_is_one():
    found = parse(metrics.render(DATAPATH, {}, [], 0))
    assert value(found, "wirespeed_xdp_generic_unexpected", interface='we"ird\\0') == 1
    assert value(found, "wirespeed_xdp_generic_unexpected", interface="eth0") == 0


def test_an_empty_host_still_says_it_was_read():
    found = parse(metrics.render({}, {}, [], 5))
    assert value(found, "wirespeed_problems") == 0 and value(found, "wirespeed_metrics_timestamp_seconds") == 5


def test_the_flow_export_agents_counters_are_counters_per_interface():
    stats = {"eth0": {"flows_exported": 12, "overflow_records": 3, "table_full": 5, "ringbuf_failed": 2,
                      "sampled_out": 0, "lines_written": 15, "at": 1.0}}
    found = parse(metrics.render(DATAPATH, {}, [], 0, stats))
    assert found["wirespeed_flow_export_table_full"] == "counter"
    assert value(found, "wirespeed_flow_export_flows_exported_total", interface="eth0") == 12
    assert value(found, "wirespeed_flow_export_ringbuf_failed_total", interface="eth0") == 2
    assert value(found, "wirespeed_flow_export_table_full_total", interface="eth0") == 5
