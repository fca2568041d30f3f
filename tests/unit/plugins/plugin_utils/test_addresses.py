# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Address lists and feed files as the roles read them on the controller."""

import pytest

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _addresses as a


def test_feed_file_with_comments_and_a_bad_line_names_file_and_line(tmp_path):
    feed = tmp_path / "feed.txt"
    feed.write_text("# threats\n203.0.113.7\n\n192.0.2.0/24  # a net\n2001:db8::/32\n")
    assert [str(n) for n in a.read_file(str(feed))] == ["203.0.113.7/32", "192.0.2.0/24", "2001:db8::/32"]
    feed.write_text("203.0.113.7\n203.0.113.300\n")
    with pytest.raises(a.AddressError, match=r"feed.txt line 2 is '203.0.113.300', which is not an IPv4"):
        a.read_file(str(feed))


def test_host_bits_are_refused_with_the_network_to_write():
    with pytest.raises(a.AddressError, match=r"firewall_deny item 2 is '10.1.2.3/8', which has host bits set; "
                                             r"write the network as 10.0.0.0/8"):
        a.check_list(["192.0.2.1", "10.1.2.3/8"], "firewall_deny")
    with pytest.raises(a.AddressError, match="not an address or CIDR string"):
        a.check_list([17], "firewall_allow")
    with pytest.raises(a.AddressError, match="must be a list"):
        a.check_list("192.0.2.1", "firewall_allow")


def test_split_puts_single_addresses_apart_and_drops_duplicates():
    out = a.split(["203.0.113.7", "203.0.113.7/32", "192.0.2.0/24", "2001:db8::1", "2001:db8:1::/48"])
    assert out == {"v4": ["203.0.113.7"], "v6": ["2001:db8::1"], "net_v4": ["192.0.2.0/24"],
                   "net_v6": ["2001:db8:1::/48"], "cidr_v4": ["203.0.113.7/32", "192.0.2.0/24"],
                   "cidr_v6": ["2001:db8::1/128", "2001:db8:1::/48"]}


def test_port_rules_and_ports_name_the_bad_item():
    assert a.port_rules([{"proto": "tcp", "port": 8080}, {"proto": 17}, {"proto": 200, "port": 9}], "rules") == [
        "tcp/8080", "udp", "200/9"]
    with pytest.raises(a.AddressError, match=r"rules rule 1 proto is 'tpc', which is not a protocol"):
        a.port_rules([{"proto": "tpc"}], "rules")
    with pytest.raises(a.AddressError, match=r"rules rule 2 is \[80\]; write it as"):
        a.port_rules([{"proto": "udp"}, [80]], "rules")
    with pytest.raises(a.AddressError, match=r"ports item 1 is True, which is not a port"):
        a.ports([True], "ports")


def test_conflicts_name_the_entry_and_the_address_it_would_cut_off():
    deny = ["198.18.0.0/15", "203.0.113.7", "2001:db8::/32"]
    assert a.conflicts(deny, ["198.18.4.1"]) == ["198.18.0.0/15 covers 198.18.4.1"]
    assert a.conflicts(deny, ["10.0.0.0/8", "2001:db8:5::/48"]) == ["2001:db8::/32 covers 2001:db8:5::/48"]
    assert a.conflicts(deny, ["198.19.0.0/16"]) == ["198.18.0.0/15 covers 198.19.0.0/16"]


def test_a_hostile_feed_line_is_named_without_reading_it_whole(tmp_path):
    import tracemalloc

    feed = tmp_path / "feed.txt"
    with open(feed, "wb") as fh:
        fh.write(b"192.0.2.1\n")
        fh.write(b"9" * (64 << 20))  # one 64 MiB line, no newline
    tracemalloc.start()
    try:
        with pytest.raises(a.AddressError, match=r"feed.txt line 2 is longer than 4096 bytes"):
            a.read_file(str(feed))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, "reading the feed took %d bytes" % peak


@pytest.mark.parametrize("content,expected", [
    (b"192.0.2.1\n\xff203.0.113.9\n", r"feed.txt line 2 is not UTF-8 text \(byte 1\)"),
    (b"192.0.2.1\n203.0.113.\x009\n", r"feed.txt line 2 holds a NUL byte"),
    (b"192.0.2.1\n" + b"x" * 3000 + b"\n", r"feed.txt line 2 is 'xxxx.*\.\.\.' \(3000 characters\), which is not"),
])
def test_hostile_feed_content_is_named_by_line(tmp_path, content, expected):
    feed = tmp_path / "feed.txt"
    feed.write_bytes(content)
    with pytest.raises(a.AddressError, match=expected):
        a.read_file(str(feed))


def test_steer_rules_split_by_protocol_and_name_the_bad_rule():
    assert a.steer_rules([{"proto": "udp", "port": 7400}, {"proto": "TCP", "port": "443"},
                          {"proto": 17, "port": 7400}], "af_xdp_rules") == {"udp_ports": [7400], "tcp_ports": [443]}
    for rules, expected in [
            ([], "af_xdp_rules is [];"),
            ([{"proto": "icmp", "port": 1}], "af_xdp_rules rule 1 proto is 'icmp'; AF_XDP steering matches tcp or udp"),
            ([{"proto": "udp", "port": 7400}, {"proto": "udp", "port": 70000}], "af_xdp_rules rule 2 port is 70000"),
            ([{"proto": "udp"}], "af_xdp_rules rule 1 is {'proto': 'udp'}; write it as"),
            ([{"proto": "sctp", "port": 9}], "af_xdp_rules rule 1 proto is 'sctp'"),
            ([{"proto": "udp", "port": p} for p in range(1, 18)], "af_xdp_rules has more than 16 udp ports")]:
        with pytest.raises(a.AddressError) as err:
            a.steer_rules(rules, "af_xdp_rules")
        assert str(err.value).startswith(expected), str(err.value)
