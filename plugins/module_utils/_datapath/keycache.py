"""The key set last synced into a list map, kept on the host, so a small change of a large list costs little.

An exclusive sync of a plain list (a deny list: keys without values) normally reads the whole map, encodes
every entry asked for and compares the two sets. With a state directory, the sync also keeps, per map, the
entries it last wrote (as given, one per line; or the keys' bytes back to back when the list came packed as
bytes, keybuf.py) and a proof of what the map held right after: the map's id and
a SHA-256 of the keys of a full batch dump, in the kernel's own order.

The next sync of that map reads the map again and hashes the dump: the same id and the same digest prove the
map still holds exactly the kept set: a write from anyone else that leaves the map with other keys changes
the bytes, and the kernel cannot answer a full dump from a cache. (A write that leaves the keys as they were
leaves the list as it was, and there is nothing to notice.) Then only the
entries that differ between the kept list and the new one are encoded and written. Anything unexpected (no
cache, another map, a drifted map, entries that are not plain strings, two strings naming one key) takes the
full path, which writes the cache anew.

Values are left out of the proof: a list's values are hit counters its program bumps under traffic, and a
sync of a plain list never writes the values of the keys it keeps.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json
import os

from .kernel.maps import ARRAYS

FORMAT = 1
DIR = "keysets"


def cache_path(state_dir: str, map_path: str) -> str:
    return os.path.join(state_dir, DIR, hashlib.sha256(map_path.encode()).hexdigest()[:32])


def usable(pinned, wanted) -> bool:
    """Whether a sync may keep (and use) a key set: a hash or trie, a list without values (entries that are not
    strings fail to be kept when they are written out, and the full path takes them)."""
    return pinned.type not in ARRAYS and list(wanted.values).count(None) == len(wanted.values)


def load(state_dir: str, pinned, key_type) -> tuple[dict, list | bytes] | None:
    """(header, the entries last synced) kept for this map, or None when none fits it: a list of text entries, or
    the keys' bytes back to back when they were synced as bytes (header "packed": the key size)."""
    try:
        with open(cache_path(state_dir, pinned.path), "rb") as fh:
            header = json.loads(fh.readline())
            body = fh.read()
    except (OSError, ValueError):
        return None
    if (header.get("format") != FORMAT or header.get("path") != pinned.path or header.get("map_id") !=
            pinned.info["id"] or header.get("key_type") != key_type):
        return None
    if header.get("packed"):
        return (header, body) if len(body) == header["count"] * header["packed"] else None
    try:
        body = body.decode()
    except ValueError:
        return None
    return header, body.split("\n") if body else []


def save(state_dir: str, pinned, key_type, entries: list | bytes, count: int, digest: str) -> None:
    """Keep entries (as given: text entries, or the keys' bytes back to back) and the proof of the map right after
    they were written (PinnedMap.key_digest)."""
    path = cache_path(state_dir, pinned.path)
    header = {"format": FORMAT, "path": pinned.path, "map_id": pinned.info["id"], "key_type": key_type,
              "count": count, "digest": digest}
    if isinstance(entries, (bytes, bytearray)):
        header["packed"] = pinned.key_size
        body = bytes(entries)
    else:
        try:
            text = "\n".join(entries)
        except TypeError:  # not all strings
            forget(state_dir, pinned.path)
            return
        if text.count("\n") != max(len(entries) - 1, 0):  # an entry of several lines: not kept
            forget(state_dir, pinned.path)
            return
        body = text.encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(header).encode() + b"\n" + body)
    os.replace(tmp, path)


def forget(state_dir: str, map_path: str) -> None:
    try:
        os.unlink(cache_path(state_dir, map_path))
    except OSError:
        pass
