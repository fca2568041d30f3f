# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Deploy and remove XDP programs in an interface's chain.

Whether anything changes is decided by observation: the new program is
loaded (which also runs the verifier) and compared with the pinned one by
kernel tag, live `.rodata` and map identities; its slot, priority and the
attachment mode are read from the chain maps and netlink. Every step that
touches the datapath is undone if a later step fails.
"""

from __future__ import annotations

import os

from . import attach, bpffs, libbpf
from .chain import HEAD, LINKS_MAP, PROGS_MAP, SLOT_VAR, Chain
from .compile import sha256_file
from .errors import DatapathError
from .loader import BpfObject, program_maps
from .program import LoadedProgram, Undo, check_name, check_pin_kind, fingerprint, pin_paths, prog_id, unpin
from .state import DEFAULT_STATE_DIR, StateStore

MODES = ("auto", "native", "generic", "offload")
DEFAULT_PRIORITY = 50


class XdpRequest:
    """What the operator asked for; plain data, validated by the engine."""

    def __init__(self, interface, name, object_path=None, root_object=None, program=None, config=None,
                 mode="auto", priority=DEFAULT_PRIORITY, pin_path=None, force=False, verify=True,
                 bpffs_path=bpffs.DEFAULT_BPFFS, state_dir=DEFAULT_STATE_DIR, src=None, defines=None):
        self.interface = interface
        self.name = name
        self.object_path = object_path
        self.root_object = root_object
        self.program = program
        self.config = dict(config or {})
        self.mode = mode
        self.priority = priority
        self.force = force
        self.verify = verify
        self.bpffs = bpffs_path
        self.state_dir = state_dir
        self.src = src
        self.defines = dict(defines or {})
        self.pin_path, self.index_path = pin_paths(bpffs_path, interface, name, pin_path)
        if mode not in MODES:
            raise DatapathError("mode %r is not one of %s." % (mode, ", ".join(MODES)))
        if not isinstance(priority, int) or not 0 <= priority < 1 << 31:
            raise DatapathError("priority %r must be an integer from 0 to 2147483647." % (priority,))
        check_name(name)


def _is_chain_aware(fd):
    return PROGS_MAP in program_maps(fd)


class Interface:
    """Everything observed on one interface: attachment, chain, our pinned programs."""

    def __init__(self, req):
        self.req = req
        self.index = attach.ifindex(req.interface)
        self.xdp = attach.xdp_state(self.index)
        self.chain = None
        if bpffs.mounted_bpffs(req.bpffs):
            self.chain = Chain.open_pinned(req.bpffs, req.interface)
        self.root_id = prog_id(self.chain.root_fd) if self.chain else None
        self.ours_attached = self.root_id is not None and self.xdp["prog_id"] == self.root_id
        self.foreign_id = None if self.ours_attached or not self.xdp["prog_id"] else self.xdp["prog_id"]
        self.names = self._names()

    def _names(self):
        """{prog id: program name} of the programs we pinned on this interface."""
        out = {}
        idir = bpffs.interface_dir(self.req.bpffs, self.req.interface)
        if not os.path.isdir(idir):
            return out
        for name in os.listdir(idir):
            fd = bpffs.get(os.path.join(idir, name, "prog"))
            if fd is not None:
                try:
                    out[prog_id(fd)] = name
                finally:
                    os.close(fd)
        return out

    def foreign_description(self):
        fd = libbpf.prog_fd_by_id(self.foreign_id)
        try:
            name = libbpf.prog_info(fd)["name"]
        finally:
            os.close(fd)
        return "program %r (id %d, %s mode)" % (name, self.foreign_id, self.xdp["mode"])

    def programs(self):
        """[(slot, priority, prog id, name)] in chain order."""
        if not self.chain:
            return []
        return [(s, p, i, self.names.get(i, "slot%d" % s)) for s, p, i in self.chain.order()]

    def close(self):
        if self.chain:
            self.chain.close()


def _load_root(req, chain, index, mode):
    """Load the chain root, reusing chain's maps when there is one; return (object, Chain)."""
    if not req.root_object:
        raise DatapathError("the chain root object is missing; run the task through the xdp_program action "
                            "or pass root_object.")
    obj = BpfObject(req.root_object)
    try:
        obj.select(None, libbpf.PROG_TYPE_XDP)
        if chain:
            obj.reuse_map(PROGS_MAP, chain.progs_fd)
            obj.reuse_map(LINKS_MAP, chain.links_fd)
        if mode == "offload":
            obj.set_ifindex(index)
            try:
                obj.load()
            except DatapathError as exc:
                raise DatapathError(
                    "the driver of interface %r does not support XDP mode offload (%s); use mode native, generic or "
                    "auto." % (req.interface, exc.message), detail=exc.detail) from exc
        else:
            obj.load()
        fresh = Chain(os.dup(obj.prog_fd), os.dup(obj.map_fd(PROGS_MAP)), os.dup(obj.map_fd(LINKS_MAP)))
        if not chain:
            fresh.init_links()
    finally:
        obj.close()
    return fresh


def _resolve_mode(req, iface):
    if req.mode != "auto":
        return req.mode
    if iface.ours_attached:
        return iface.xdp["mode"]
    return "native"


def _desired_order(iface, req, slot, chain_aware):
    """Chain order after the change, as [(priority, name, slot, chain aware)]; checks plain programs run last."""
    entries = []
    for s, prio, slot_prog_id, name in iface.programs():
        if name == req.name:
            continue
        fd = libbpf.prog_fd_by_id(slot_prog_id) if slot_prog_id else None
        try:
            aware = _is_chain_aware(fd) if fd is not None else True
        finally:
            if fd is not None:
                os.close(fd)
        entries.append((prio, name, s, aware))
    entries.append((req.priority, req.name, slot, chain_aware))
    entries.sort(key=lambda e: (e[0], e[1]))
    for prio, name, _slot, aware in entries[:-1]:
        if not aware:
            last = entries[-1]
            raise DatapathError(
                "program %r (priority %d) on %s does not hand packets on (it does not use wirespeed/chain.h), so "
                "%r (priority %d) could never run after it; give the plain program the highest priority."
                % (name, prio, req.interface, last[1], last[0]))
    return entries


def _record_view(record):
    keys = ("object_sha256", "program", "config", "mode", "priority", "src")
    return {k: record.get(k) for k in keys} if record else None


def deploy(req, check_mode=False):
    """Make req.name run in req.interface's chain; return the result dict."""
    store = StateStore(req.state_dir)
    if not check_mode:
        bpffs.ensure_bpffs(req.bpffs)
    object_sha = sha256_file(req.object_path)
    with store.lock():
        iface = Interface(req)
        try:
            return _deploy(req, store, iface, object_sha, check_mode)
        finally:
            iface.close()


def _deploy(req, store, iface, object_sha, check_mode):
    check_pin_kind(req.pin_path, req.name, req.interface, libbpf.PROG_TYPE_XDP)
    if iface.foreign_id and not req.force:
        raise DatapathError(
            "interface %r already runs XDP %s that wirespeed did not attach; remove it, or set force: true "
            "to replace it." % (req.interface, iface.foreign_description()))
    mode = _resolve_mode(req, iface)
    current = {e[3]: e for e in iface.programs()}
    old = current.get(req.name)
    old_fd = bpffs.get(os.path.join(req.pin_path, "prog"))
    record = store.current(req.interface, req.name)
    try:
        old_fp = fingerprint(old_fd) if old_fd is not None else None
        if old and old[1] == req.priority:
            slot = old[0]
        else:
            exclude = [old[0]] if old else []
            slot = iface.chain.free_slot(exclude) if iface.chain else 0

        new_root = _plan_root(req, iface, mode)
        chain = iface.chain or new_root
        loaded = None
        if req.verify or not check_mode:
            loaded = LoadedProgram(req.object_path, req.program, libbpf.PROG_TYPE_XDP, req.config, req.pin_path,
                                   internal={SLOT_VAR: slot},
                                   reuse={PROGS_MAP: chain.progs_fd, LINKS_MAP: chain.links_fd},
                                   offload_ifindex=iface.index if mode == "offload" else None)
            loaded.chain_aware = PROGS_MAP in loaded.defined
        try:
            chain_aware = loaded.chain_aware if loaded else True
            _desired_order(iface, req, slot, chain_aware)
            new_fp = fingerprint(loaded.fd) if loaded else None
            same_prog = (old_fp is not None and new_fp == old_fp) if loaded else (
                record is not None and record.get("object_sha256") == object_sha
                and record.get("config") == req.config and old_fp is not None)
            in_place = old is not None and old[1] == req.priority and old_fd is not None \
                and old[2] == prog_id(old_fd)
            changed = new_root is not None or not (same_prog and in_place and not (loaded and loaded.recreated))
            before = {
                "name": req.name, "program": (record or {}).get("program") if old else None,
                "attached": bool(old), "mode": iface.xdp["mode"] if iface.ours_attached else None,
                "priority": old[1] if old else None, "tag": old_fp["tag"] if old_fp else None,
                "object_sha256": (record or {}).get("object_sha256") if old else None,
                "config": (record or {}).get("config") if old else None,
                "chain": [e[3] for e in iface.programs()],
                "root_tag": _tag(iface.chain.root_fd) if iface.ours_attached else None,
            }
            after_chain = [e[1] for e in _desired_order(iface, req, slot, chain_aware)]
            after = {
                "name": req.name, "program": loaded.function if loaded else req.program,
                "attached": True, "mode": mode, "priority": req.priority,
                "tag": new_fp["tag"] if new_fp else None, "object_sha256": object_sha,
                "config": req.config, "chain": after_chain,
                "root_tag": _tag((new_root or iface.chain).root_fd),
            }
            if iface.foreign_id:
                before["foreign"] = iface.foreign_description()
            result = {
                "changed": changed, "diff": {"before": before, "after": after},
                "object_sha256": object_sha, "mode": mode, "priority": req.priority,
                "verified": loaded is not None, "chain": after_chain,
                "maps": loaded.map_paths(req.pin_path) if loaded else {},
                "maps_recreated": loaded.recreated if loaded else [],
                "previous": _record_view(record) if changed else _record_view(
                    (store.load()["interfaces"].get(req.interface, {}).get(req.name) or {}).get("previous")),
            }
            if not changed or check_mode:
                result["prog_id"] = prog_id(old_fd) if (old_fd is not None and not changed) else None
                result["tag"] = old_fp["tag"] if (old_fp and not changed) else (new_fp or {}).get("tag")
                return result
            kept_prog = same_prog and in_place
            result["mode"] = _apply(req, iface, chain, new_root, loaded, slot, old, old_fd, mode, kept_prog)
            result["diff"]["after"]["mode"] = result["mode"]
            result["prog_id"] = prog_id(old_fd if kept_prog else loaded.fd)
            result["tag"] = new_fp["tag"]
            kept = store.keep_object(req.object_path, object_sha)
            store.record(req.interface, req.name, {
                "kind": "xdp", "root_object": store.keep_object(req.root_object, sha256_file(req.root_object)),
                "object_sha256": object_sha, "object": kept, "program": loaded.function,
                "config": req.config, "defines": req.defines, "mode": result["mode"], "priority": req.priority,
                "src": req.src, "prog_id": result["prog_id"], "tag": result["tag"], "pin_path": req.pin_path,
            })
            return result
        finally:
            if loaded:
                loaded.close()
            if new_root:
                new_root.close()
    finally:
        if old_fd is not None:
            os.close(old_fd)


def _plan_root(req, iface, mode):
    """The chain root to attach, or None when the attached one is current.

    The root is loaded every run (reusing the chain's maps): a fresh interface
    needs it, and a root built from a newer collection replaces the old one.
    """
    new_root = _load_root(req, iface.chain, iface.index, mode)
    if (iface.chain is not None and iface.ours_attached and iface.xdp["mode"] == mode
            and fingerprint(new_root.root_fd) == fingerprint(iface.chain.root_fd)):
        new_root.close()
        return None
    return new_root


def _tag(prog_fd):
    return libbpf.prog_info(prog_fd)["tag"]


def _apply(req, iface, chain, new_root, loaded, slot, old, old_fd, mode, prog_unchanged):
    undo = Undo()
    try:
        fresh_chain = iface.chain is None
        if not prog_unchanged:
            if old and old[0] == slot:
                chain.set_prog(slot, loaded.fd)
                undo.add(chain.set_prog, slot, old_fd)
            else:
                order = _desired_order(iface, req, slot, loaded.chain_aware)
                idx = [e[1] for e in order].index(req.name)
                after = HEAD if idx == 0 else order[idx - 1][2]
                chain.insert(slot, loaded.fd, req.priority, after)
                undo.add(chain.remove, slot)
                if old:
                    chain.remove(old[0])
        if fresh_chain:
            chain.pin(req.bpffs, req.interface)
            undo.add(bpffs.remove_tree, bpffs.chain_dir(req.bpffs, req.interface))
        mode = _attach_root(req, iface, new_root, mode, undo)
        if not prog_unchanged:
            loaded.pin(req.pin_path, req.index_path)
        return mode
    except Exception:
        undo.run()
        raise


def _attach_root(req, iface, new_root, mode, undo):
    """Attach (or re-attach in another mode) the chain root; atomic where the kernel allows."""
    if new_root is None:
        return mode
    expected = None
    if iface.xdp["prog_id"]:
        expected = libbpf.prog_fd_by_id(iface.xdp["prog_id"])
    try:
        if expected is not None and iface.xdp["mode"] != mode:
            # the kernel refuses native and generic at once: this switch has a gap
            attach.detach(iface.index, iface.xdp["mode"], expected, req.interface)
            undo.add(_reattach, iface.index, iface.xdp["prog_id"], iface.xdp["mode"], req.interface)
            attach.attach(iface.index, new_root.root_fd, mode, None, req.interface)
        elif expected is not None:
            attach.attach(iface.index, new_root.root_fd, mode, expected, req.interface)
        else:
            try:
                attach.attach(iface.index, new_root.root_fd, mode, None, req.interface)
            except DatapathError:
                if req.mode != "auto" or mode != "native":
                    raise
                mode = "generic"
                attach.attach(iface.index, new_root.root_fd, mode, None, req.interface)
    finally:
        if expected is not None:
            os.close(expected)
    if iface.chain is not None and new_root is not iface.chain:
        bpffs.pin_replace(new_root.root_fd, os.path.join(bpffs.chain_dir(req.bpffs, req.interface), "root"))
    return mode


def _reattach(index, prog_id, mode, ifname):
    fd = libbpf.prog_fd_by_id(prog_id)
    try:
        attach.attach(index, fd, mode, None, ifname)
    finally:
        os.close(fd)


def remove(req, check_mode=False):
    """Take req.name out of the interface's chain; detach the root when the chain is empty."""
    store = StateStore(req.state_dir)
    with store.lock():
        iface = Interface(req)
        try:
            return _remove(req, store, iface, check_mode)
        finally:
            iface.close()


def _remove(req, store, iface, check_mode):
    check_pin_kind(req.pin_path, req.name, req.interface, libbpf.PROG_TYPE_XDP)
    current = {e[3]: e for e in iface.programs()}
    old = current.get(req.name)
    pinned = os.path.exists(req.pin_path) or os.path.islink(req.index_path)
    foreign = iface.foreign_id if req.force else None
    remaining = [e[3] for e in iface.programs() if e[3] != req.name]
    record = store.current(req.interface, req.name)
    changed = bool(old or pinned or foreign)
    result = {
        "changed": changed, "chain": remaining, "maps": {}, "prog_id": None, "tag": None, "mode": None,
        "previous": _record_view(record),
        "diff": {"before": {"attached": bool(old), "priority": old[1] if old else None,
                            "chain": [e[3] for e in iface.programs()],
                            "foreign": iface.foreign_description() if foreign else None},
                 "after": {"attached": False, "priority": None, "chain": remaining, "foreign": None}},
    }
    if not changed or check_mode:
        return result
    if old:
        iface.chain.remove(old[0])
    unpin(req.pin_path, req.index_path, req.bpffs)
    if iface.chain and not iface.chain.order():
        if iface.ours_attached:
            attach.detach(iface.index, iface.xdp["mode"], iface.chain.root_fd, req.interface)
        bpffs.remove_tree(bpffs.chain_dir(req.bpffs, req.interface))
        bpffs.prune(bpffs.interface_dir(req.bpffs, req.interface), req.bpffs)
    if foreign:
        fd = libbpf.prog_fd_by_id(foreign)
        try:
            attach.detach(iface.index, iface.xdp["mode"], fd, req.interface)
        finally:
            os.close(fd)
    if record is not None or old:
        store.record(req.interface, req.name, None)
    return result
