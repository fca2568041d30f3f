# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The feed cache: a feed is read and packed once per content, shared by the hosts' workers, and the check of
its entries against the protected addresses says what _addresses.conflicts says."""

import os
import random

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import apply
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _addresses, _feeds


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WIRESPEED_FEED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_feeds, "_LOADED", {})
    return tmp_path / "cache"


def write(path, lines):
    path.write_text("# a feed\n" + "\n".join(lines) + "\n")
    return str(path)


def test_a_feed_is_split_packed_and_built_once_per_content(tmp_path, cache, monkeypatch):
    feed = write(tmp_path / "feed.txt", ["203.0.113.7", "192.0.2.0/24", "2001:db8::1", "2001:db8:bad::/48",
                                         "203.0.113.7"])
    handle = _feeds.handle([feed])
    assert handle["count"] == 4 and handle["counts"] == {"v4": 1, "v6": 1, "net_v4": 1, "net_v6": 1}
    part = _feeds.resolve(dict(handle, part="net_v6"))
    keys = apply.unpack(part, "net_v6")  # the LPM key bytes: host-order prefix length, then the address
    assert keys.raw == bytes([48, 0, 0, 0]) + bytes.fromhex("20010db80bad") + bytes(10)
    assert keys.texts() == ["2001:db8:bad::/48"]
    assert apply.unpack(_feeds.resolve(dict(handle, part="v4")), "v4").raw == bytes([203, 0, 113, 7])
    built = []
    monkeypatch.setattr(_feeds, "_LOADED", {})  # another worker process: it reads the cache, builds nothing
    monkeypatch.setattr(_feeds, "_build", built.append)
    assert _feeds.handle([feed]) == handle and built == []
    write(tmp_path / "feed.txt", ["203.0.113.8"])  # new content: a new feed
    monkeypatch.setattr(_feeds, "_LOADED", {})
    with pytest.raises(TypeError):  # _build is stubbed out: proves the new content is not served from the cache
        _feeds.handle([feed])
    assert built == [[feed]]


def test_a_feed_that_changed_during_the_run_is_refused(tmp_path):
    feed = write(tmp_path / "feed.txt", ["203.0.113.7"])
    handle = _feeds.handle([feed])
    write(tmp_path / "feed.txt", ["203.0.113.9"])
    with pytest.raises(_feeds.FeedError, match="changed while the run was using it"):
        _feeds.resolve(dict(handle, part="v4"))


def test_a_bad_line_names_file_and_line(tmp_path):
    feed = write(tmp_path / "feed.txt", ["203.0.113.7", "203.0.113.0/33"])
    with pytest.raises(_addresses.AddressError, match=r"feed\.txt line 3 is '203\.0\.113\.0/33'"):
        _feeds.handle([feed])


def test_covering_finds_what_comparing_every_entry_finds(tmp_path):
    rng = random.Random(7)
    lines = {"10.%d.%d.%d" % (rng.randrange(4), rng.randrange(256), rng.randrange(256)) for _line in range(3000)}
    lines |= {"10.%d.%d.0/24" % (rng.randrange(4), rng.randrange(256)) for _line in range(300)}
    lines |= {"10.1.0.0/16", "0.0.0.0/1", "2001:db8::/32", "2001:db8::7"}
    feed = write(tmp_path / "feed.txt", sorted(lines))
    protected = ["10.1.2.3", "10.2.0.0/16", "192.0.2.1", "2001:db8::7", "198.51.100.0/24"]
    nets = _addresses.read_file(feed)
    assert sorted(_feeds.covering([feed], protected)) == sorted(_addresses.conflicts(nets, protected))
    assert _feeds.covering([feed], ["100.64.0.1"]) == ["0.0.0.0/1 covers 100.64.0.1"]
    assert _feeds.covering([feed], ["172.31.0.1"]) == []


def test_the_cache_keeps_the_newest_feeds_only(tmp_path, cache):
    for i in range(_feeds.KEEP + 3):
        _feeds.handle([write(tmp_path / ("feed%d.txt" % i), ["203.0.113.%d" % i])])
    assert len([n for n in os.listdir(cache) if n.endswith(".json")]) == _feeds.KEEP
