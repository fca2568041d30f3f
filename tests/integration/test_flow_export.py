# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flow export: known flows between namespaces come out as JSON lines with their counts and bytes; a table too
small for the traffic sends the rest through the ring buffer, and what the ring buffer cannot take is counted."""

import json
import os
import shlex
import socket
import struct
import subprocess

import pytest
from conftest import BPF
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.host import flows

SRC = os.path.join(BPF, "flow_export.bpf.c")


def lines(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def exporter(dut, name, out, **kw):
    return flows.Exporter(os.path.join(dut.pin_root, name, "maps"), flows.JsonLines(str(out)), **kw)


def test_the_flows_sent_are_the_flows_exported(dut, objects, tmp_path):
    dut.deploy("fx", objects["build"](SRC), priority=1000)
    assert dut.udp(7000, 5) == 5 and dut.udp(7001, 3) == 3  # it passes everything
    out = tmp_path / "flows.jsonl"
    with netns(dut.dut):
        agent = exporter(dut, "fx", out, labels={"interface": dut.ifname})
        try:
            assert agent.sweep() == 0  # nothing idle for 15 s yet
            assert agent.sweep(force=True) >= 2
            stats = agent.stats()
        finally:
            agent.close()
    udp = {r["dport"]: r for r in lines(out) if r["proto"] == "udp"}
    assert udp[7000]["packets"] == 5 and udp[7001]["packets"] == 3
    assert udp[7000]["bytes"] == 5 * (udp[7000]["bytes"] // 5) and udp[7000]["bytes"] >= 5 * 42
    assert udp[7000]["dst"] == dut.dut_ip and udp[7000]["src"] == dut.peer_ip and udp[7000]["interface"] == dut.ifname
    assert udp[7000]["end"] == "stop" and udp[7000]["sample_rate"] == 1 and udp[7000]["first"] <= udp[7000]["last"]
    assert stats["table_full"] == 0 and stats["ringbuf_failed"] == 0 and stats["flows_exported"] >= 2
    with netns(dut.dut):  # exported flows leave the table
        agent = exporter(dut, "fx", tmp_path / "again.jsonl")
        try:
            assert agent.sweep(force=True) == 0
        finally:
            agent.close()


def test_a_full_table_goes_to_the_ring_buffer_and_what_it_cannot_take_is_counted(dut, objects, tmp_path):
    small = objects["build"](SRC, FLOW_TABLE_SIZE=2, FLOW_RING_SIZE=4096)
    dut.deploy("fx", small, priority=1000)
    sent = {port: 4 for port in range(7100, 7120)}  # 20 flows of 4 packets, 2 fit; 4 KiB of ring holds ~40 records
    for port, count in sent.items():
        assert dut.udp(port, count) == count
    out = tmp_path / "flows.jsonl"
    with netns(dut.dut):
        agent = exporter(dut, "fx", out)
        try:
            agent.poll(0)
            agent.sweep(force=True)
            stats = agent.stats()
        finally:
            agent.close()
    records = [r for r in lines(out) if r["proto"] == "udp" and r["dport"] in sent]
    in_table = [r for r in records if r["end"] != "overflow"]
    overflow = [r for r in records if r["end"] == "overflow"]
    assert len(in_table) <= 2 and all(r["packets"] == 4 for r in in_table)
    assert all(r["packets"] == 1 for r in overflow)  # one packet's worth each
    # every packet that missed the full table is a record read or a counted failure: nothing silently lost
    assert stats["table_full"] >= 72 and stats["ringbuf_failed"] > 0
    assert stats["table_full"] == stats["records_sent"] + stats["ringbuf_failed"]
    assert stats["records_sent"] == stats["overflow_records"] >= len(overflow)
    assert sum(r["packets"] for r in records) + stats["ringbuf_failed"] >= sum(sent.values())


def test_sampling_records_one_in_n_and_says_so(dut, objects, tmp_path):
    dut.deploy("fx", objects["build"](SRC), priority=1000, config={"sample_rate": 4})
    assert dut.udp(7000, 40) == 40
    out = tmp_path / "flows.jsonl"
    with netns(dut.dut):
        agent = exporter(dut, "fx", out, sample_rate=4)
        try:
            agent.sweep(force=True)
            stats = agent.stats()
        finally:
            agent.close()
    flow = [r for r in lines(out) if r["proto"] == "udp" and r["dport"] == 7000]
    recorded = sum(r["packets"] for r in flow)
    assert all(r["sample_rate"] == 4 for r in flow)
    assert recorded + stats["sampled_out"] >= 40 and 0 < recorded < 40


def decode_ipfix(message):
    """A minimal RFC 7011 reader: the header, the templates, and each data record as {element id: value}."""
    version, length, _at, sequence, _domain = struct.unpack_from("!HHIII", message)
    assert version == 10 and length == len(message)
    templates, records, pos = {}, [], 16
    while pos < length:
        set_id, set_len = struct.unpack_from("!HH", message, pos)
        body, pos = message[pos + 4:pos + set_len], pos + set_len
        if set_id == 2:
            at = 0
            while at < len(body):
                template_id, count = struct.unpack_from("!HH", body, at)
                templates[template_id] = [struct.unpack_from("!HH", body, at + 4 + 4 * i) for i in range(count)]
                at += 4 + 4 * count
        else:
            fields, at = templates[set_id], 0
            while at + sum(f[1] for f in fields) <= len(body):
                record = {}
                for element, size in fields:
                    raw = body[at:at + size]
                    record[element] = int.from_bytes(raw, "big") if size <= 8 else raw
                    at += size
                records.append(record)
    return sequence, templates, records


def test_flows_also_go_to_an_ipfix_collector(dut, objects, tmp_path):
    dut.deploy("fx", objects["build"](SRC), priority=1000)
    assert dut.udp(7000, 5) == 5
    with netns(dut.dut):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # in the dut's namespace, on its loopback
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        agent = exporter(dut, "fx", tmp_path / "flows.jsonl",
                         ipfix=flows.Ipfix("127.0.0.1:%d" % collector.getsockname()[1]))
        try:
            agent.sweep(force=True)
            stats = agent.stats()
            messages = [collector.recv(65535) for _n in range(stats["ipfix_messages"])]  # one per address family
        finally:
            agent.close()
            collector.close()
    decoded = [decode_ipfix(m) for m in messages]
    assert [d[0] for d in decoded] == [sum(len(d[2]) for d in decoded[:i]) for i in range(len(decoded))]  # sequence
    templates, records = decoded[0][1], [r for d in decoded for r in d[2]]
    assert [e for e, _s in templates[256]][:2] == [8, 12] and [e for e, _s in templates[257]][:2] == [27, 28]
    flow = next(r for r in records if r.get(11) == 7000 and 8 in r)  # destinationTransportPort, IPv4
    assert flow[2] == 5 and flow[4] == 17 and flow[136] == 4 and flow[305] == 1  # packets, UDP, forced end, 1 in 1
    assert socket.inet_ntoa(flow[8].to_bytes(4, "big")) == dut.peer_ip
    written = next(r for r in lines(tmp_path / "flows.jsonl") if r["dport"] == 7000)
    assert flow[152] <= flow[153] and flow[1] == written["bytes"]
    assert stats["ipfix_records"] == len(records) == stats["flows_exported"]


@pytest.mark.parametrize("collector", ["", "collector.example:4739", "192.0.2.9", "192.0.2.9:0", "[::1]:99999"])
def test_a_collector_that_does_not_parse_is_refused(collector):
    with pytest.raises(flows.DatapathError) as err:
        flows.parse_collector(collector)
    assert err.value.message.startswith("ipfix_collector %r" % collector)


@pytest.mark.parametrize("max_bytes", [0, 100])
def test_bad_output_settings_are_refused(tmp_path, max_bytes):
    with pytest.raises(flows.DatapathError) as err:
        flows.JsonLines(str(tmp_path / "f.jsonl"), max_bytes=max_bytes)
    assert err.value.message.startswith("max_bytes %d is too small" % max_bytes)
    with pytest.raises(flows.DatapathError) as err:
        flows.JsonLines(str(tmp_path / "nowhere" / "f.jsonl"))
    assert "is not in a writable directory" in err.value.message


def test_rotation_by_size_keeps_the_backups(tmp_path):
    out = flows.JsonLines(str(tmp_path / "f.jsonl"), max_bytes=4096, backups=2)
    for batch in range(6):
        out.write([{"batch": batch, "pad": "x" * 1000}] * 3)
    assert out.rotations >= 3
    assert sorted(os.listdir(tmp_path)) == ["f.jsonl.1", "f.jsonl.2"] or \
        sorted(os.listdir(tmp_path)) == ["f.jsonl", "f.jsonl.1", "f.jsonl.2"]


# the role and its agent on a lab host ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from labplay import running_lab

    with running_lab(tmp_path_factory, "flows", 1) as fleet:
        yield fleet


def role(lab, **extra):
    from labplay import playbook

    book = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "role.yml")
    return playbook(lab, book, role_under_test="flow_export", flow_export_interfaces=["eth0"], **extra)


def start_agent(lab, host, unit):
    """The unit's ExecStart as a detached process on the lab host (systemd is not PID 1 here); its PID, once the
    agent is running its loop: it writes its stats file after each sweep, so a new one means its SIGTERM handler
    is in place (a SIGTERM before that would end it without exporting)."""
    with open(unit) as fh:
        exec_start = next(line for line in fh.read().splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start[len("ExecStart="):])
    stats = "%s/flow-export-%s.json" % (argv[argv.index("--state-dir") + 1], argv[argv.index("--interface") + 1])
    started = lab.ssh(host, "rm -f %s; setsid %s > %s.log 2>&1 < /dev/null & echo $!"
                      % (shlex.quote(stats), exec_start[len("ExecStart="):], unit))
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.split()[-1])
    ready = lab.ssh(host, "for i in $(seq 600); do test -s %s && exit 0; kill -0 %d || exit 2; sleep 0.1; done; "
                          "exit 1" % (shlex.quote(stats), pid))
    assert ready.returncode == 0, "the agent did not start its loop: %s" % lab.ssh(host, "cat %s.log" % unit).stdout
    return pid


def stop_agent(lab, host, pid):
    """SIGTERM to the agent we started, by its PID; wait (bounded) until it has written the flows and exited."""
    assert lab.ssh(host, "kill -TERM %d && for i in $(seq 50); do kill -0 %d 2>/dev/null || exit 0; sleep 0.2; "
                         "done; exit 1" % (pid, pid)).returncode == 0


def test_the_role_installs_an_agent_that_exports_the_flows_and_restarts_without_losing_any(lab):
    import subprocess

    from labplay import LabNet

    host = lab.hosts[0]
    out_dir, units = os.path.join(lab.dir, "flows"), os.path.join(lab.dir, "units")
    os.makedirs(out_dir)
    os.makedirs(units)
    settings = dict(flow_export_output=os.path.join(out_dir, "flows.jsonl"), flow_export_unit_dir=units,
                    flow_export_idle_timeout=300, flow_export_active_timeout=600)
    for bad, sentence in [({"flow_export_table_size": 1000}, "flow_export_table_size is 1000; give a power of two"),
                          ({"flow_export_sample_rate": 0}, "flow_export_sample_rate is 0; give 1"),
                          ({"flow_export_ipfix_collector": "collector:4739"},
                           "flow_export_ipfix_collector is collector:4739; give address:port"),
                          ({"flow_export_output": "/nonexistent/dir/f.jsonl"}, "is not in a writable directory")]:
        refused = role(lab, **dict(settings, **bad))
        assert refused["rc"] != 0 and sentence in json.dumps(refused), bad
        pinned = lab.ssh(host, "ls /sys/fs/bpf/wirespeed/eth0 2>/dev/null").stdout
        assert os.listdir(units) == [] and "flow_export" not in pinned
    first = role(lab, **settings)
    assert first["rc"] == 0 and first["stats"][host["name"]]["changed"] >= 2
    again = role(lab, **settings)
    assert again["rc"] == 0 and again["stats"][host["name"]]["changed"] == 0
    unit = os.path.join(units, "wirespeed-flow-export-eth0.service")
    verify = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stderr

    net = LabNet(lab, host)
    pid = start_agent(lab, host, unit)
    assert net.udp(7000, 6) == 6
    stop_agent(lab, host, pid)
    pid = start_agent(lab, host, unit)  # a restart: the table is pinned, the agent keeps nothing
    assert net.udp(7000, 4) == 4 and net.udp(7002, 2) == 2
    stop_agent(lab, host, pid)
    assert os.path.exists(settings["flow_export_output"]), lab.ssh(host, "cat %s.log" % unit).stdout
    records = lines(settings["flow_export_output"])
    to = {}
    for r in records:
        if r["proto"] == "udp" and r["src"] == lab.peer["ip"]:
            to[r["dport"]] = to.get(r["dport"], 0) + r["packets"]
    assert to == {7000: 10, 7002: 2}, records
    assert all(r["interface"] == "eth0" and r["program"] == "flow_export" for r in records)
    facts = role(lab, **settings)["wirespeed.datapath.flow_export : Install the flow export agent"][host["name"]]
    stats = facts["results"][0]["ansible_facts"]["wirespeed_flow_export"]["eth0"]
    assert stats["flows_exported"] >= 2 and stats["table_full"] == 0 and stats["ringbuf_failed"] == 0
    removed = role(lab, **dict(settings, flow_export_state="absent"))
    assert removed["rc"] == 0 and not os.path.exists(unit)
