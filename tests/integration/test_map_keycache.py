# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key set a sync keeps on the host (keycache.py): a small change is planned from it, and any write from
anyone else is noticed (the map is read and proven, never trusted) and put right by the full path."""

import os

import pytest
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import apply, keybuf, keycache, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel.maps import PinnedMap

LIST = ["10.1.%d.%d" % (i // 250, i % 250 + 1) for i in range(2000)]


@pytest.fixture
def kept(dut, objects, monkeypatch):
    dut.deploy("bl", objects["blocklist_big"], priority=100)  # a plain hash of 4096 IPv4 sources
    path = os.path.join(dut.pin_root, "bl", "maps", "blocklist")
    paths = []  # which path planned each sync: "kept" or "full"
    real = mapsync.KeptSync.__init__

    def spy(self, *args, **kw):
        real(self, *args, **kw)
        paths.append("kept")
    monkeypatch.setattr(mapsync.KeptSync, "__init__", spy)

    def sync(entries, packed=None, **kw):
        """packed: a list sent as key bytes (as datapath_apply gets a feed), beside the inline entries."""
        with netns(dut.dut):
            before = len(paths)
            keys = None if packed is None else apply.unpack(keybuf.pack_entries(packed, "ipv4"), "the feed")
            result = mapsync.sync(path, entries=entries, key_type="ipv4", exclusive=True, state_dir=dut.state_dir,
                                  keys=keys, **kw)
            result["planned"] = "kept" if len(paths) > before else "full"
            return result

    def keys():
        with PinnedMap(path) as m:
            return sorted(m.dump())
    sync.keys, sync.path, sync.dut = keys, path, dut
    return sync


def test_a_small_change_is_planned_from_the_kept_set_and_gives_what_the_full_path_gives(kept):
    first = kept(LIST)
    assert first["planned"] == "full" and first["added"] == 2000
    assert os.path.exists(keycache.cache_path(kept.dut.state_dir, kept.path))
    changed = LIST[20:] + ["192.0.2.%d" % i for i in range(1, 21)]
    second = kept(changed, diff=True)
    assert second["planned"] == "kept" and (second["added"], second["removed"]) == (20, 20)
    assert second["diff"]["prepared"].splitlines()[0] == "+ 192.0.2.1"
    with PinnedMap(kept.path) as m:
        assert sorted(m.dump()) == sorted(bytes(map(int, a.split("."))) for a in changed)
    again = kept(list(changed))
    assert again["planned"] == "kept" and not again["changed"]
    back = kept(LIST)  # and back, with the map proven again on the way
    assert back["planned"] == "kept" and (back["added"], back["removed"]) == (20, 20)


@pytest.mark.parametrize("tamper", ["delete", "add"])
def test_a_write_from_anyone_else_is_noticed_and_put_right(kept, tamper):
    kept(LIST)
    with PinnedMap(kept.path) as m:
        key = bytes([10, 1, 0, 1])
        if tamper == "delete":
            m.delete([key])
        else:
            m.write([(bytes([198, 18, 0, 1]), bytes(m.slot_size))])
    again = kept(LIST)
    assert again["planned"] == "full"
    assert again["changed"]
    assert len(kept.keys()) == 2000
    assert kept(LIST)["planned"] == "kept"  # proven again after the full path


def test_counters_bumped_by_traffic_do_not_void_the_kept_set(kept):
    kept(LIST)
    packet = bytes(12) + b"\x08\x00" + bytes([0x45]) + bytes(11) + bytes([10, 1, 0, 1]) + bytes([10, 9, 9, 9])
    fd = libbpf.obj_get(os.path.join(kept.dut.pin_root, "bl", "prog"))
    try:  # the program bumps the listed source's counter in place, as traffic does
        assert libbpf.test_run(fd, packet, repeat=5)[0] == 1  # XDP_DROP
    finally:
        os.close(fd)
    with PinnedMap(kept.path) as m:
        assert m.dump()[bytes([10, 1, 0, 1])] == (5).to_bytes(8, "little")
    again = kept(LIST[1:])
    assert again["planned"] == "kept" and again["removed"] == 1


def test_repeats_check_mode_and_a_lost_cache(kept):
    kept(["10.1.0.1", "10.1.0.2"])
    assert kept(["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.3"])["planned"] == "kept"  # a repeat: one key
    assert kept(["10.1.0.1", "10.1.0.2", "10.1.0.3"])["planned"] == "kept"
    preview = kept(["10.1.0.9"], check_mode=True)
    assert preview["planned"] == "kept" and (preview["added"], preview["removed"]) == (1, 3)
    assert len(kept.keys()) == 3  # check mode wrote nothing, the kept set still proves the map
    assert kept(["10.1.0.1", "10.1.0.2", "10.1.0.3"])["planned"] == "kept" and len(kept.keys()) == 3
    keycache.forget(kept.dut.state_dir, kept.path)
    assert kept(["10.1.0.1"])["planned"] == "full" and kept(["10.1.0.2"])["planned"] == "kept"


def test_keys_sent_as_bytes_are_kept_as_bytes_and_proven_as_text_is(kept):
    first = kept([], packed=LIST)
    assert first["planned"] == "full" and first["added"] == 2000
    assert kept([], packed=LIST)["planned"] == "kept" and not kept([], packed=LIST)["changed"]
    changed = LIST[20:] + ["192.0.2.%d" % i for i in range(1, 21)]
    second = kept(["10.1.0.1"], packed=changed, diff=True)  # one inline entry beside the feed, which it left
    assert second["planned"] == "kept" and (second["added"], second["removed"]) == (20, 19)
    lines = second["diff"]["prepared"].splitlines()
    assert lines[0] == "+ 192.0.2.1" and lines[20] == "- 10.1.0.2"  # addresses, not key bytes
    with PinnedMap(kept.path) as m:
        assert sorted(m.dump()) == sorted(bytes(map(int, a.split("."))) for a in changed + ["10.1.0.1"])
    with PinnedMap(kept.path) as m:  # a write from anyone else
        m.delete([bytes([192, 0, 2, 5])])
    again = kept(["10.1.0.1"], packed=changed)
    assert again["planned"] == "full" and again["added"] == 1
    assert kept(["10.1.0.1"], packed=changed)["planned"] == "kept"
    assert kept(LIST)["planned"] == "full"  # the same list as text: kept anew as text
    emptied = kept([], packed=[])
    assert emptied["removed"] == 2000 and kept.keys() == []
    refill = kept([], packed=LIST)
    assert refill["planned"] == "kept" and refill["added"] == 2000 and len(kept.keys()) == 2000
