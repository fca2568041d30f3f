# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.mapsync import normalize
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types import codecs as codec


@pytest.mark.parametrize("type_name,value,raw,text", [
    ("ipv4", "203.0.113.7", bytes([203, 0, 113, 7]), "203.0.113.7"),
    ("ipv6", "2001:DB8::1", bytes.fromhex("20010db8000000000000000000000001"), "2001:db8::1"),
    ("ipv4_cidr", "10.0.0.0/8", b"\x08\0\0\0" + bytes([10, 0, 0, 0]), "10.0.0.0/8"),
    ("ipv6_cidr", "2001:db8::/32", b"\x20\0\0\0" + bytes.fromhex("20010db8" + "00" * 12), "2001:db8::/32"),
    ("port", "22/tcp", b"\x00\x16", "22"),
    ("be16", 8080, b"\x1f\x90", "8080"),
    ("u32", 5, b"\x05\0\0\0", "5"),
    ("s8", -1, b"\xff", "-1"),
    ("proto", "tcp", b"\x06", "tcp"),
    ("proto_port", "tcp/8080", b"\x20\0\0\0\x06\0\x1f\x90", "tcp/8080"),
    ("proto_port", "icmp", b"\x08\0\0\0\x01\0\0\0", "icmp"),
    ("proto_port", {"proto": 17, "port": 53}, b"\x20\0\0\0\x11\0\x00\x35", "udp/53"),
    ("proto_port", "udp/0", b"\x08\0\0\0\x11\0\0\0", "udp"),
    ("mac", "AA-bb-cc-dd-ee-ff", bytes.fromhex("aabbccddeeff"), "aa:bb:cc:dd:ee:ff"),
    ("bool", "yes", b"\x01", "True"),
    ("u8", True, b"\x01", "1"),
])
def test_round_trip(type_name, value, raw, text):
    c = codec.named(type_name, len(raw))
    assert c.encode(value) == raw
    assert c.text(raw) == text


@pytest.mark.parametrize("type_name,size,value,message", [
    ("ipv4", 4, "10.0.0.300", "'10.0.0.300' is not an IP address"),
    ("ipv4", 4, "2001:db8::1", "an IPv6 address does not fit this IPv4 field"),
    ("ipv4_cidr", 8, "10.0.0.1/8", "10.0.0.1/8 has host bits set; write the network as 10.0.0.0/8"),
    ("ipv6_cidr", 20, "10.0.0.0/8", "an IPv4 network does not fit this IPv6 LPM key"),
    ("u16", 2, 65536, "65536 does not fit u16 (0 to 65535)"),
    ("u8", 1, "many", "u8 needs an integer, got 'many'"),
    ("mac", 6, "aa:bb:cc", "'aa:bb:cc' is not a MAC address like aa:bb:cc:dd:ee:ff"),
    ("hex", 4, "abcd", "2 bytes given where 4 are needed"),
    ("proto_port", 8, "tcp/http", "'tcp/http' is not a port rule like tcp/8080 or icmp"),
    ("proto_port", 8, "tcp/70000", "'tcp/70000': port 70000 is not 0 to 65535"),
    ("proto_port", 8, {"prefixlen": 8, "proto": "tcp", "port": 22},
     "{'prefixlen': 8, 'proto': 'tcp', 'port': 22}: prefixlen must be 32 for one port"),
    ("ifindex", 4, "nosuch-if0", "interface 'nosuch-if0' does not exist on this host"),
])
def test_refusals_say_what_was_expected(type_name, size, value, message):
    with pytest.raises(ValueError) as err:
        codec.named(type_name, size).encode(value)
    assert str(err.value) == message


def test_struct_fields_by_name_with_padding_optional():
    s = codec.StructCodec(8, [("addr", 0, codec.AddressCodec(4)), ("port", 4, codec.PortCodec()),
                              ("pad", 6, codec.IntCodec(2))], "struct k")
    raw = s.encode({"addr": "192.0.2.1", "port": 53})
    assert raw == bytes([192, 0, 2, 1, 0, 53, 0, 0])
    assert s.decode(raw) == {"addr": "192.0.2.1", "port": 53, "pad": 0}
    with pytest.raises(ValueError, match="struct k has no field 'prt'"):
        s.encode({"addr": "192.0.2.1", "prt": 53})
    with pytest.raises(ValueError, match="struct k field 'port' is missing"):
        s.encode({"addr": "192.0.2.1"})


def test_guess_from_the_input_form():
    assert codec.guess(["10.0.0.1", "10.0.0.2"], 4, False).name == "ipv4"
    assert codec.guess(["2001:db8::1"], 16, False).name == "ipv6"
    assert codec.guess(["10.0.0.0/8"], 8, True).name == "ipv4_cidr"
    assert codec.guess([1, 2], 4, False) is None


def test_cidr_sorts_by_address_then_length():
    c = codec.named("ipv4_cidr", 8)
    raws = [c.encode(x) for x in ("10.0.0.0/16", "9.0.0.0/8", "10.0.0.0/8")]
    assert [c.text(r) for r in sorted(raws, key=c.sort_key)] == ["9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/16"]


def test_entries_forms():
    assert list(normalize(key="a", value=1)) == [(1, "a", 1)]
    assert list(normalize(entries={"a": 1, "b": None})) == [(1, "a", 1), (2, "b", None)]
    assert list(normalize(entries=["a", {"key": "b", "value": 2}])) == [(1, "a", None), (2, "b", 2)]
    assert list(normalize(entries=["a", "b"])) == [(1, "a", None), (2, "b", None)]
    with pytest.raises(DatapathError, match="entry 1 has unknown field 'vlaue'"):
        normalize(entries=[{"key": "a", "vlaue": 1}])
