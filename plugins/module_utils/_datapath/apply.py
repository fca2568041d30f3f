"""A host's whole intent in one call: every program (XDP or TC) and every map of it, under one host lock.

The roles compute and check what a host should run on the controller; this applies it. Map entries may come
packed: a feed's addresses as the map's own key bytes (keybuf.py), any other long list as its text, one entry a
line (both compressed when that pays, base64, with a sha256 digest). Every packed list is unpacked and checked
before the first program or map is touched, so a corrupt transfer changes nothing.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import contextlib
import hashlib
import zlib

from . import keybuf, mapsync
from .errors import DatapathError
from .kernel import netns as netns_mod
from .record.store import StateStore

PACKED_DIGEST_LEN = 32  # hex digits of sha256 a packed list carries


def pack(entries: list) -> dict:
    """The transfer form of a plain list of keys (strings): {data, compressed, count, digest}."""
    text = "\n".join(entries).encode("utf-8")
    squeezed = zlib.compress(text, 6)
    compressed = len(squeezed) < len(text)
    return {"data": base64.b64encode(squeezed if compressed else text).decode("ascii"), "compressed": compressed,
            "count": len(entries), "digest": hashlib.sha256(text).hexdigest()[:PACKED_DIGEST_LEN]}


def unpack(packed: dict, where: str) -> list | keybuf.KeyBuffer:
    """The list of keys packed holds (a KeyBuffer for keys packed as bytes); DatapathError naming `where` when it
    does not arrive whole."""
    if packed.get("format") == keybuf.FORMAT:
        return keybuf.unpack(packed, where)
    text = keybuf.received(packed, where)
    entries = text.decode("utf-8").split("\n") if text else []
    if packed.get("count") is not None and len(entries) != packed["count"]:
        raise DatapathError("the packed entries of %s hold %d entries, not the %d sent; nothing was changed, so run "
                            "the task again." % (where, len(entries), packed["count"]))
    return entries


def label(program: dict) -> str:
    """How a program is named in messages and diffs: firewall on eth0, mirror_ingress on eth1 (ingress)."""
    text = "%s on %s" % (program["name"], program["interface"])
    if program.get("netns"):
        text += " (netns %s)" % program["netns"]
    return text


def expand(programs: list) -> list:
    """One program per interface (and per direction): the role-level form (interfaces, directions,
    absent_directions) turned into the form each hook takes (interface, direction)."""
    out = []
    for item in programs:
        interfaces = item.get("interfaces")
        if interfaces is None:
            interfaces = [item.get("interface")]
        targets = [(item.get("direction"), item["name"], item.get("state") or "present")]
        if item.get("directions") is not None or item.get("absent_directions") is not None:
            state = item.get("state") or "present"
            targets = [(d, "%s_%s" % (item["name"], d), state) for d in item.get("directions") or []]
            targets += [(d, "%s_%s" % (item["name"], d), "absent") for d in item.get("absent_directions") or []]
        for ifname in interfaces:
            if not ifname:
                raise DatapathError("program %s names no interface; give interface or interfaces." % item["name"])
            for direction, name, state in targets:
                one = {k: v for k, v in item.items() if k not in ("interfaces", "directions", "absent_directions")}
                one.update(interface=ifname, name=name, direction=direction, state=state)
                one["maps"] = [m for m in item.get("maps") or []
                               if m.get("direction") in (None, direction)] if state == "present" else []
                out.append(one)
    return out


def unpack_all(programs: list) -> None:
    """Every packed list of every map unpacked in place (entries first, then the packed ones), before anything
    changes; keys packed as bytes go to the spec's "keys" (a KeyBuffer), beside its inline entries."""
    done = {}  # the same packed list (one feed on several interfaces) is unpacked once
    for program in programs:
        for spec in program["maps"]:
            packed = spec.pop("packed_entries", None)
            if packed is None:
                continue
            key = packed.get("digest"), packed.get("data", "")[:64]
            if key not in done:
                done[key] = unpack(packed, "map %s of %s" % (spec.get("map"), label(program)))
            if isinstance(done[key], keybuf.KeyBuffer):
                spec["keys"] = done[key]
            else:
                spec["entries"] = list(spec.get("entries") or []) + done[key]


def apply(programs: list, deploy, *, bpffs_path: str, state_dir: str, check_mode: bool, diff: bool) -> dict:
    """Deploy (or remove) each program with deploy(program) -> result, then sync its maps; all under the host
    lock. Returns {changed, programs: [result per program], diff: [...]}."""
    programs = expand(programs)
    unpack_all(programs)
    results, diffs = [], []
    with StateStore(state_dir).lock():
        for program in programs:
            where = label(program)
            result = deploy(program)
            prog_diff = result.pop("diff", None)
            if diff and prog_diff is not None:
                diffs.append(dict(prog_diff, before_header=where, after_header=where))
            result = dict(result, name=program["name"], interface=program["interface"],
                          direction=program.get("direction"))
            if program["state"] == "present" and program["maps"]:
                synced = sync_maps(program, bpffs_path=bpffs_path, state_dir=state_dir, check_mode=check_mode,
                                   diff=diff)
                diffs.extend(synced.pop("diff", []))
                result["maps_synced"] = synced["maps"]
                result["changed"] = result["changed"] or synced["changed"]
                if synced.get("msg"):
                    result["msg"] = synced["msg"]
            results.append(result)
    out = {"changed": any(r["changed"] for r in results), "programs": results}
    if diff:
        out["diff"] = diffs
    return out


def sync_maps(program: dict, *, bpffs_path: str, state_dir: str, check_mode: bool, diff: bool) -> dict:
    """The maps of one deployed program, as bpf_map_entry's maps option syncs them."""
    specs = [{k: v for k, v in spec.items() if k != "direction"} for spec in program["maps"]]
    ifname, ns = program["interface"], program.get("netns")
    key = netns_mod.key(ifname, ns) if ns else ifname
    with netns_mod.entered(ns) if ns else contextlib.nullcontext():
        try:
            return mapsync.sync_all(specs, interface=key, name=program["name"], bpffs_path=bpffs_path,
                                    check_mode=check_mode, diff=diff, state_dir=state_dir)
        except DatapathError as exc:
            exc.message = "%s: %s" % (label(program), exc.message)
            raise
