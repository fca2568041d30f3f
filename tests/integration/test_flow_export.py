# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flow export: known flows between namespaces come out as JSON lines with their counts and bytes; a table too
small for the traffic sends the rest through the ring buffer, and what the ring buffer cannot take is counted."""

import json
import os

import pytest
from conftest import BPF
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import flows

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
    for _ in range(6):
        out.write([{"pad": "x" * 1000}] * 3)
    assert out.rotations >= 3
    assert sorted(os.listdir(tmp_path)) == ["f.jsonl.1", "f.jsonl.2"] or \
        sorted(os.listdir(tmp_path)) == ["f.jsonl", "f.jsonl.1", "f.jsonl.2"]
