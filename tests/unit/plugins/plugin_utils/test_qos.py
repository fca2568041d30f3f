# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rates, bursts, DSCP values, port ranges and their map entries, as the traffic roles check them."""

import random
import re

import pytest

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _qos
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._addresses import AddressError


@pytest.mark.parametrize("text,bits", [("10mbit", 10 ** 7), ("500kbit", 5 * 10 ** 5), ("2gbit", 2 * 10 ** 9),
                                       ("1.5Mbit", 15 * 10 ** 5), (64000, 64000), ("64000", 64000),
                                       (" 1 gbit ", 10 ** 9)])
def test_rates(text, bits):
    assert _qos.rate(text, "r") == bits


@pytest.mark.parametrize("text,words", [("10mbps", "is not a rate"), ("-1", "is not a rate"), (-1, "is not a rate"),
                                        ("0", "no rate at all"), (0, "no rate at all"), ("fast", "is not a rate"),
                                        (True, "is not a rate"), (None, "is not a rate")])
def test_bad_rates_name_the_variable_and_value(text, words):
    with pytest.raises(AddressError) as err:
        _qos.rate(text, "egress_ratelimit_rules rule 3 rate")
    assert str(err.value).startswith("egress_ratelimit_rules rule 3 rate is %r, " % (text,)) and words in str(err.value)


def test_bursts():
    assert _qos.burst(None, "b", 10 ** 6) == _qos.DEFAULT_BURST  # 100 ms of 1 Mbit/s is less
    assert _qos.burst("", "b", 10 ** 9) == 10 ** 9 // 80  # 100 ms at 1 Gbit/s
    assert _qos.burst(1514, "b", 10 ** 6) == 1514
    for bad in (1513, 0, -5, "x", True):
        with pytest.raises(AddressError, match="less than one full frame"):
            _qos.burst(bad, "b", 10 ** 6)


def test_egress_rules_split_by_family_and_refuse_repeats():
    out = _qos.egress_rules([{"destination": "192.0.2.0/24", "rate": "1mbit"},
                             {"destination": "2001:db8::/32", "rate": 2000000, "burst": 4000, "per": "rule"}], "v")
    assert out["v4"] == [{"key": "192.0.2.0/24", "value": {"rate": 10 ** 6, "burst": _qos.DEFAULT_BURST, "per": 0,
                                                           "id": 1}}]
    assert out["v6"] == [{"key": "2001:db8::/32", "value": {"rate": 2 * 10 ** 6, "burst": 4000, "per": 1, "id": 2}}]
    with pytest.raises(AddressError, match=re.escape("v rule 2 repeats destination 192.0.2.0/24 of rule 1")):
        _qos.egress_rules([{"destination": "192.0.2.0/24", "rate": "1mbit"},
                           {"destination": "192.0.2.0/24", "rate": "2mbit"}], "v")
    with pytest.raises(AddressError, match=re.escape("v rule 1 per is 'flow'")):
        _qos.egress_rules([{"destination": "192.0.2.0/24", "rate": "1mbit", "per": "flow"}], "v")


@pytest.mark.parametrize("name,value", [("EF", 46), ("af41", 34), ("CS6", 48), ("cs0", 0), ("AF11", 10), ("VA", 44),
                                        ("LE", 1), (63, 63), ("7", 7)])
def test_dscp_values(name, value):
    assert _qos.dscp(name, "d") == value


@pytest.mark.parametrize("bad", ["AF51", "EF2", 64, -1, "x", True])
def test_bad_dscp(bad):
    with pytest.raises(AddressError, match="which is not a DSCP"):
        _qos.dscp(bad, "d")


def test_port_range_prefixes_cover_exactly_the_range():
    rng = random.Random(3)
    for _i in range(300):
        low = rng.randrange(1, 65536)
        high = rng.randrange(low, 65536)
        covered = set()
        for start, bits in _qos.prefixes(low, high):
            size = 1 << (16 - bits)
            assert start % size == 0  # an aligned block: one LPM prefix
            covered.update(range(start, start + size))
        assert covered == set(range(low, high + 1))
        assert len(_qos.prefixes(low, high)) <= 32


def test_dscp_rules_entries_and_refusals():
    out = _qos.dscp_rules([{"proto": "udp", "port": "5060-5061", "dscp": "CS3", "match": "destination"},
                           {"proto": "tcp", "port": 22, "dscp": "CS6", "direction": "both"}], "r")
    assert {"key": {"prefixlen": 31, "proto": 17, "side": 0, "port": 5060}, "value": 24} in out["egress"]
    assert len(out["egress"]) == 3 and len(out["ingress"]) == 2  # tcp/22 on both sides, both directions
    for rules, words in (
            ([{"proto": "udp", "port": "2000-1000", "dscp": "EF"}], "a reversed range"),
            ([{"proto": "udp", "port": "1-70000", "dscp": "EF"}], "not a port range"),
            ([{"proto": "icmp", "port": 1, "dscp": "EF"}], "DSCP rules match tcp or udp"),
            ([{"proto": "udp", "port": 1, "dscp": "EF", "direction": "out"}], "give egress, ingress or both"),
            ([{"proto": "udp", "port": "10-20", "dscp": "EF"}, {"proto": "udp", "port": 15, "dscp": "CS1"}],
             "overlaps rule 1, which sets DSCP 46")):
        with pytest.raises(AddressError, match=re.escape(words)):
            _qos.dscp_rules(rules, "r")
    # overlapping with the same DSCP, or on other sides or directions, is fine
    _qos.dscp_rules([{"proto": "udp", "port": "10-20", "dscp": "EF"}, {"proto": "udp", "port": 15, "dscp": 46},
                     {"proto": "udp", "port": 15, "dscp": "CS1", "direction": "ingress"}], "r")


def test_conn_settings():
    assert _qos.conn_settings(20, 10, 30, "c") == {"interval_ns": 50000000, "burst": 10, "udp_idle_ns": 30 * 10 ** 9}
    for args, words in (((0, 1, 1), "c_max_new_per_second is 0"), ((1, -1, 1), "c_burst is -1"),
                        ((1, 1, 0), "c_udp_timeout is 0"), (("x", 1, 1), "c_max_new_per_second is 'x'")):
        with pytest.raises(AddressError, match=re.escape(words)):
            _qos.conn_settings(*args, "c")


def test_rules_given_as_text_say_so():
    with pytest.raises(AddressError, match=re.escape("r must be a list of {proto, port, dscp} rules, not the text")):
        _qos.dscp_rules("udp 5060 EF", "r")
    with pytest.raises(AddressError, match=re.escape("r must be a list of {destination, rate} rules, not a mapping")):
        _qos.egress_rules({"destination": "192.0.2.0/24"}, "r")
