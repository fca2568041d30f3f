# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Long address lists packed as the map's own key bytes (keybuf.py): what the controller packs comes back as the
same keys, a damaged or mis-sized transfer is refused in one sentence, and a few inline entries join the buffer
once."""

import base64
import hashlib
import zlib

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import apply, keybuf, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types import codecs

V4 = ["10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(1, 3000, 7)]


@pytest.mark.parametrize("key_type, entries, first", [
    ("ipv4", ["203.0.113.7", "192.0.2.1", "203.0.113.7"], bytes([192, 0, 2, 1])),
    ("ipv6", ["2001:db8::1", "::1"], bytes(15) + b"\x01"),
    ("ipv4_cidr", ["192.0.2.0/24", "10.0.0.0/8"], bytes([8, 0, 0, 0, 10, 0, 0, 0])),
    ("ipv6_cidr", ["2001:db8:bad::/48"], bytes([48, 0, 0, 0]) + bytes.fromhex("20010db80bad") + bytes(10)),
])
def test_keys_come_back_as_the_map_layout_sorted_and_once(key_type, entries, first):
    keys = apply.unpack(keybuf.pack_entries(entries, key_type), "map m")
    assert isinstance(keys, keybuf.KeyBuffer) and keys.key_type == key_type
    assert len(keys) == len(set(entries))
    assert keys.raw[:keys.size] == first  # the LPM layout: host-order prefix length, then the address
    assert sorted(keys.texts()) == sorted(set(entries))
    assert list(keys) == sorted(set(keys))


def test_a_feed_packs_smaller_as_bytes_than_as_text():
    as_bytes, as_text = keybuf.pack_entries(V4, "ipv4"), apply.pack(V4)
    assert as_bytes["count"] == len(V4) and as_bytes["format"] == "keys"
    assert len(as_bytes["data"]) < len(as_text["data"])
    assert apply.unpack(keybuf.pack_entries([], "ipv4"), "map m").raw == b""


def _damaged(packed, how):
    raw = zlib.decompress(base64.b64decode(packed["data"]))
    if how == "flipped byte":
        data = bytearray(base64.b64decode(packed["data"]))
        data[len(data) // 2] ^= 0x20
        return dict(packed, data=base64.b64encode(bytes(data)).decode())
    if how == "cut short":
        return dict(packed, data=packed["data"][:len(packed["data"]) // 2])
    if how == "not base64":
        return dict(packed, data=packed["data"][:10] + "*" + packed["data"][10:])
    if how == "no digest":
        return dict(packed, digest="")
    if how == "other keys, old digest":  # a whole key more, compressed again: only the digest tells
        return dict(packed, data=base64.b64encode(zlib.compress(raw + bytes(4))).decode())
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["flipped byte", "cut short", "not base64", "no digest", "other keys, old digest"])
def test_a_damaged_transfer_is_refused_in_one_sentence_naming_the_map(how):
    with pytest.raises(DatapathError) as err:
        apply.unpack(_damaged(keybuf.pack_entries(V4, "ipv4"), how), "map deny_v4 of firewall on eth0")
    assert err.value.message == ("the packed entries of map deny_v4 of firewall on eth0 did not arrive whole (their "
                                 "sha256 does not match); nothing was changed, so run the task again.")


def _repacked(raw, key_type, count):
    return {"format": "keys", "key_type": key_type, "data": base64.b64encode(raw).decode(), "compressed": False,
            "count": count, "digest": hashlib.sha256(raw).hexdigest()[:32]}


@pytest.mark.parametrize("raw, count, size", [
    (bytes(4 * 3 + 2), None, "not whole"),  # 14 bytes of 4-byte keys
    (bytes(4 * 3), 4, "count"),  # whole keys, but not as many as sent
])
def test_keys_of_the_wrong_size_or_count_are_refused(raw, count, size):
    with pytest.raises(DatapathError) as err:
        apply.unpack(_repacked(raw, "ipv4", count), "map deny_v4")
    assert err.value.message.startswith("the packed keys of map deny_v4 are %d bytes, not " % len(raw))
    assert err.value.message.endswith("4-byte ipv4 keys sent; nothing was changed, so run the task again.")


def test_an_unknown_key_type_is_refused():
    with pytest.raises(DatapathError, match="name key type 'mac'; packed keys are one of"):
        apply.unpack(_repacked(bytes(12), "mac", 2), "map m")


def test_a_packed_feed_goes_beside_the_inline_entries_and_is_unpacked_once():
    packed = keybuf.pack_entries(V4, "ipv4")
    programs = apply.expand([{"name": "firewall", "interfaces": ["eth0", "eth1"],
                              "maps": [{"map": "deny_v4", "entries": ["192.0.2.1"], "packed_entries": packed}]}])
    apply.unpack_all(programs)
    one, two = (p["maps"][0] for p in programs)
    assert one["keys"] is two["keys"] and one["entries"] == ["192.0.2.1"]
    wanted = mapsync.wanted_of(one)
    assert isinstance(wanted, mapsync.KeyWanted) and len(wanted) == len(V4) + 1


def test_inline_entries_join_the_keys_once_and_another_layout_reads_them_as_text():
    keys = keybuf.KeyBuffer(keybuf.encode(V4, "ipv4"), "ipv4")
    wanted = mapsync.KeyWanted(keys, [V4[5], "192.0.2.1", "192.0.2.1"])
    joined = wanted.resolved(codecs.AddressCodec(4))
    assert isinstance(joined, mapsync.KeyWanted) and not joined.inline
    assert len(joined.packed) == len(V4) + 1 and bytes([192, 0, 2, 1]) in joined.packed
    as_text = wanted.resolved(codecs.IntCodec(4))  # a map keyed by u32: the entries as text, checked as ever
    assert isinstance(as_text, mapsync.Wanted) and as_text.keys[:3] == [V4[5], "192.0.2.1", "192.0.2.1"]
    assert len(as_text) == len(V4) + 3


@pytest.mark.parametrize("size", [4, 8, 16, 20])
def test_differences_are_the_keys_added_and_removed(size):
    old = [bytes([i % 251, i // 251]) + bytes(size - 2) for i in range(1000)]
    new = old[10:] + [bytes([255, i]) + bytes(size - 2) for i in range(5)]
    add, remove = keybuf.differences(b"".join(sorted(new)), b"".join(old), size)
    assert sorted(keybuf.records(add, size)) == sorted(new[-5:])
    assert sorted(keybuf.records(remove, size)) == sorted(old[:10])
    assert keybuf.differences(b"".join(old), b"".join(old), size) == (b"", b"")
