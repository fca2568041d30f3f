# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Address feeds read, checked, split and packed once per feed content on the controller, not once per host.

A feed (one or more files) is keyed by the sha256 of its files' contents. The first host's task that needs it
reads and checks it (_addresses.read_file), splits it by map (host addresses and networks, by family), packs
each part for datapath_apply as the map's own key bytes (keybuf.pack: 4 bytes an IPv4 address, the LPM trie
layout for networks) and keeps the result in the controller's cache folder; the other
hosts of the run, in their own worker processes, wait on a lock for it and read it back. What travels in
host variables is a small handle ({feed, files, count, counts}); datapath_apply's action plugin puts each
part's packed list into the module call.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import keybuf
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _addresses

PARTS = ("v4", "v6", "net_v4", "net_v6")
KEY_TYPES = {"v4": "ipv4", "v6": "ipv6", "net_v4": "ipv4_cidr", "net_v6": "ipv6_cidr"}  # each part's keys
CACHE_FORMAT = 2  # in the cache file's name: 2, parts packed as key bytes (1 was text lines)
KEEP = 8  # feeds kept in the cache folder (the newest); a fleet rarely has more than a few at once


class FeedError(Exception):
    """A feed that cannot be used; its message is one sentence for the operator."""


def cache_dir() -> str:
    base = os.environ.get("WIRESPEED_FEED_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "wirespeed.datapath", "feeds")
    os.makedirs(base, mode=0o700, exist_ok=True)
    return base


def digest(paths: list) -> str:
    """sha256 over the files' names and contents, in order: the feed's identity."""
    h = hashlib.sha256()
    for path in paths:
        file_hash = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    file_hash.update(block)
        except OSError as exc:
            raise FeedError("the address file %s cannot be read (%s); check the path." % (path, exc.strerror)) \
                from None
        h.update(path.encode() + b"\0" + file_hash.digest())
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path):
    with open(path + ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _build(paths: list) -> dict:
    """Read, check, de-duplicate and split the feed; each part packed, and the sorted ranges for conflicts."""
    nets = []
    for path in paths:
        nets.extend(_addresses.read_file(path))  # AddressError names the file and line
    split = _addresses.split(nets)
    out = {"count": len(split["cidr_v4"]) + len(split["cidr_v6"]), "parts": {}, "ranges": {}}
    for part in PARTS:
        out["parts"][part] = keybuf.pack_entries(split[part], KEY_TYPES[part])
    for family in ("v4", "v6"):  # [first, last] of each entry, sorted: covering in log time
        spans = sorted([int(n.network_address), int(n.broadcast_address)] for n in
                       (ipaddress.ip_network(t) for t in split["cidr_" + family]))
        out["ranges"][family] = spans
    return out


def _prune(folder, keep):
    feeds = sorted((os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".json")),
                   key=os.path.getmtime, reverse=True)
    for path in feeds[keep:]:
        for stale in (path, path[:-5] + ".lock"):
            with contextlib.suppress(OSError):
                os.unlink(stale)


_LOADED = {}  # feed digest -> its cache entry, within one worker process


def load(paths: list) -> tuple[str, dict]:
    """(digest, cache entry) of the feed made of paths, built once and kept in the cache folder."""
    key = digest(paths)
    if key in _LOADED:
        return key, _LOADED[key]
    folder = cache_dir()
    path = os.path.join(folder, "%s.v%d.json" % (key, CACHE_FORMAT))
    with _locked(path[:-5]):
        if not os.path.exists(path):
            entry = _build(paths)
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "w") as fh:
                json.dump(entry, fh)
            os.replace(tmp, path)
            _prune(folder, KEEP)
        else:
            with open(path) as fh:
                entry = json.load(fh)
            os.utime(path)
    _LOADED[key] = entry
    return key, entry


def handle(paths: list) -> dict:
    """What host variables carry of a feed: its identity and sizes, not its entries."""
    key, entry = load(paths)
    return {"feed": key, "files": list(paths), "count": entry["count"],
            "counts": {part: entry["parts"][part]["count"] for part in PARTS}}


def resolve(ref: dict) -> dict:
    """The packed list of one part of a feed, for datapath_apply: ref is {files, part} (with the handle's feed)."""
    if not isinstance(ref, dict) or ref.get("part") not in PARTS or not isinstance(ref.get("files"), list):
        raise FeedError("a map's feed must be a feed handle (from the address_feed lookup) and a part (%s)."
                        % ", ".join(PARTS))
    key, entry = load(ref["files"])
    if ref.get("feed") and ref["feed"] != key:
        raise FeedError("the feed %s changed while the run was using it; run again." % ", ".join(ref["files"]))
    return entry["parts"][ref["part"]]


def covering(paths: list, protected: list) -> list:
    """['<feed entry> covers <protected>'] for every feed entry that overlaps a protected address or network,
    as _addresses.conflicts says it, found by bisection rather than by comparing every entry."""
    _key, entry = load(paths)
    found = []
    for item in protected:
        p = _addresses.parse(item, "protected entry") if isinstance(item, str) else item
        spans = entry["ranges"]["v4" if p.version == 4 else "v6"]
        lo, hi = int(p.network_address), int(p.broadcast_address)
        shown = p if p.prefixlen < p.max_prefixlen else p.network_address
        widest = max((b - a for a, b in spans), default=0)  # an entry starting before lo reaches at most this far
        start = bisect.bisect_left(spans, [lo - widest, -1])
        for first, last in spans[start:]:
            if first > hi:
                break
            if last >= lo:
                net = ipaddress.ip_network((first, _prefix(first, last, p.max_prefixlen)))
                found.append("%s covers %s" % (net, shown))
    return found


def _prefix(first, last, bits):
    return bits - (last - first + 1).bit_length() + 1
