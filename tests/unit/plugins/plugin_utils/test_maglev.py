# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load balancer's Maglev tables and service checks (plugins/plugin_utils/_maglev.py)."""

import collections

import pytest

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _maglev as m
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._addresses import AddressError

THREE = [("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.3", 1)]


def named(backends, size=m.DEFAULT_SIZE):
    return [backends[i][0] for i in m.table(backends, size)]


def test_same_table_whatever_the_order_of_the_list():
    assert named(THREE) == named(list(reversed(THREE)))
    svc = [{"vip": "192.0.2.10", "proto": "tcp", "port": 80,
            "backends": [{"address": a, "mac": "02:00:00:00:00:0%d" % i} for i, (a, _w) in enumerate(THREE)]}]
    first, again = m.entries(m.check(svc)), m.entries(m.check(svc))
    assert first["tables"][0]["table"] == again["tables"][0]["table"]
    assert first["tables"][0]["digest"] == again["tables"][0]["digest"]
    # the digest is that of the bytes the host gets
    assert m.pack(m.unpack(first["tables"][0]["table"]))[1] == first["tables"][0]["digest"]


@pytest.mark.parametrize("weights", [(1, 1, 1), (1, 2, 3), (5, 1, 1), (1, 1, 1, 1, 1, 1, 1, 7)])
def test_slots_follow_the_weights(weights):
    backends = [("198.51.100.%d" % (i + 1), w) for i, w in enumerate(weights)]
    counts = collections.Counter(named(backends))
    for name, w in backends:
        expected = m.DEFAULT_SIZE * w / float(sum(weights))
        assert abs(counts[name] - expected) <= 0.01 * expected + 2, (name, counts[name], expected)


def test_removing_one_backend_moves_its_slots_and_almost_nothing_else():
    before = named(THREE)
    after = named(THREE[:1] + THREE[2:])
    moves = collections.Counter((a, b) for a, b in zip(before, after) if a != b)
    from_removed = sum(n for (a, _b), n in moves.items() if a == "10.0.0.2")
    between_rest = sum(n for (a, _b), n in moves.items() if a != "10.0.0.2")
    assert from_removed == before.count("10.0.0.2")  # every slot of the removed backend, about 1/3
    assert abs(from_removed / float(m.DEFAULT_SIZE) - 1 / 3.0) < 0.01
    # Maglev is not perfectly stable: a few slots move between the remaining backends (here 10 of 65537,
    # 0.015%); the balancer's connection table keeps established flows where they are regardless
    assert between_rest / float(m.DEFAULT_SIZE) < 0.001, moves


def test_adding_a_backend_takes_slots_from_every_other():
    before = named(THREE)
    after = named(THREE + [("10.0.0.4", 1)])
    moved = sum(1 for a, b in zip(before, after) if a != b)
    assert abs(moved / float(m.DEFAULT_SIZE) - 0.25) < 0.01


def test_disruption_report_names_moves():
    svc = [{"vip": "192.0.2.10", "proto": "udp", "port": 53,
            "backends": [{"address": a, "mac": "02:00:00:00:00:01"} for a, _w in THREE]}]
    ent = m.entries(m.check(svc))
    host = {"backends": ent["backends"], "services": ent["services"]}
    unchanged = {"service": "192.0.2.10 udp/53", "slots": 0, "share": 0.0, "moves": []}
    assert m.disruption(host, m.check(svc)) == [unchanged]
    svc[0]["backends"][1]["state"] = "draining"
    (report,) = m.disruption(host, m.check(svc))
    assert 0.32 < report["share"] < 0.35
    assert report["moves"][0].startswith("10.0.0.2 -> ")
    assert m.disruption({}, m.check(svc)) == []  # first run: nothing to move


def test_entries_map_ipv4_into_16_bytes():
    svc = [{"vip": "192.0.2.10", "proto": "icmp",
            "backends": [{"address": "192.0.2.11", "mac": "02-00-00-00-00-0A"}]},
           {"vip": "2001:db8::10", "proto": "icmp",
            "backends": [{"address": "2001:db8::11", "mac": "02:00:00:00:00:0b"}]}]
    ent = m.entries(m.check(svc, size=251))
    assert ent["services"][0]["key"] == {"addr": "::ffff:192.0.2.10", "port": 0, "proto": 1}
    assert ent["services"][1]["key"]["proto"] == 58  # ICMPv6 for an IPv6 VIP
    assert ent["backends"][0]["value"]["mac"] == "02:00:00:00:00:0a"
    assert len(m.unpack(ent["tables"][0]["table"])) == 251
    assert m.unmap("::ffff:192.0.2.11") == "192.0.2.11"


def svc_with(**backend):
    be = dict({"address": "192.0.2.11", "mac": "02:00:00:00:00:01"}, **backend)
    return [{"vip": "192.0.2.10", "proto": "tcp", "port": 80, "backends": [be]}]


@pytest.mark.parametrize("services,size,words", [
    (svc_with(address="192.0.2.10"), 65537, "item 1 backends item 1 address is 192.0.2.10, the VIP itself"),
    ([{"vip": "192.0.2.10", "port": 80, "backends": ["192.0.2.11", "192.0.2.11"]}], 65537,
     "backends item 2 repeats the backend 192.0.2.11"),
    (svc_with(weight=0), 65537, "backends item 1 has weight 0 with state active"),
    (svc_with(mac="02:00:00:00:00"), 65537, "backends item 1 mac is '02:00:00:00:00', which is not a MAC"),
    ([{"vip": "192.0.2.10", "port": 80, "backends": ["192.0.2.%d" % i for i in range(11, 14)]}], 251,
     "has 3 backends; a table of 251 slots holds at most 2"),
    (svc_with(), 65536, "load_balancer_table_size is 65536; give a prime"),
    (svc_with(address="2001:db8::1"), 65537, "but the vip 192.0.2.10 is IPv4"),
    ([{"vip": "192.0.2.10", "proto": "sctp", "port": 80, "backends": ["192.0.2.11"]}], 65537, "proto is 'sctp'"),
    ([{"vip": "192.0.2.10", "proto": "icmp", "port": 80, "backends": ["192.0.2.11"]}], 65537,
     "has port 80 but proto icmp"),
    (svc_with(state="draining"), 65537, "has no active backend"),
    ([{"vip": "192.0.2.10", "port": 0, "backends": ["192.0.2.11"]}], 65537, "item 1 port is 0"),
])
def test_bad_input_names_variable_and_value(services, size, words):
    with pytest.raises(AddressError) as err:
        m.check(services, size=size)
    assert words in str(err.value)
    assert str(err.value).count(".") >= 1 and "\n" not in str(err.value)


def test_unresolved_mac_fails_only_once_macs_are_known():
    svc = [{"vip": "192.0.2.10", "port": 80, "backends": ["192.0.2.11"]}]
    assert m.check(svc)[0]["backends"][0]["mac"] is None  # preflight, before resolution
    with pytest.raises(AddressError, match=r"address 192\.0\.2\.11 has no mac and the balancer's neighbour table"):
        m.check(svc, macs={"192.0.2.11": None})
    assert m.check(svc, macs={"192.0.2.11": "02:00:00:00:00:01"})[0]["backends"][0]["mac"] == "02:00:00:00:00:01"


def test_a_backend_side_service_may_list_no_backends_but_still_needs_a_good_vip():
    """tasks_from=backend checks the services without backends (a DSR backend needs the VIPs only); the
    balancer's side still refuses an empty list."""
    svc = [{"vip": "192.0.2.10", "proto": "udp", "port": 7700, "backends": []},
           {"vip": "192.0.2.20", "proto": "tcp", "port": 80, "encap": "ipip"}]
    checked = m.check(svc, backends_needed=False)
    shown = [(c["vip"], c["encap"], c["backends"]) for c in checked]
    assert shown == [("192.0.2.10", "none", []), ("192.0.2.20", "ipip", [])]
    with pytest.raises(AddressError, match=r"item 1 backends is empty; give at least one backend"):
        m.check(svc)
    with pytest.raises(AddressError, match=r"item 1 encap is 'gre'"):
        m.check([{"vip": "192.0.2.10", "port": 80, "encap": "gre"}], backends_needed=False)
