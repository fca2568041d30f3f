# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Deploy and remove TC (clsact, direct-action cls_bpf) programs.

Like the XDP side, whether anything changes is decided by observation: the
requested program is loaded (running the verifier) and compared with the
pinned one, and the filter at the requested hook, priority and handle must
run exactly that pinned program. Filters someone else added are left alone
unless `force`; the clsact qdisc is created when missing and removed only
when wirespeed created it and no filter is left on it.
"""

from __future__ import annotations

import os

from . import attach, bpffs, libbpf, tcattach
from .compile import sha256_file
from .errors import DatapathError
from .program import LoadedProgram, Undo, check_name, check_pin_kind, fingerprint, pin_paths, prog_id, unpin
from .state import DEFAULT_STATE_DIR, StateStore

DIRECTIONS = ("ingress", "egress")
DEFAULT_PRIORITY = 50
DEFAULT_HANDLE = 1
CLSACT_FLAG = "clsact_created"


class TcRequest:
    def __init__(self, interface, direction, name, object_path=None, program=None, config=None,
                 priority=DEFAULT_PRIORITY, handle=DEFAULT_HANDLE, pin_path=None, force=False, verify=True,
                 bpffs_path=bpffs.DEFAULT_BPFFS, state_dir=DEFAULT_STATE_DIR, src=None, defines=None):
        if direction not in DIRECTIONS:
            raise DatapathError("direction %r is not one of ingress, egress." % (direction,))
        check_name(name)
        if not isinstance(priority, int) or not 1 <= priority <= 0xFFFF:
            raise DatapathError("priority %r must be an integer from 1 to 65535 (the filter's pref)." % (priority,))
        if not isinstance(handle, int) or not 1 <= handle <= 0xFFFFFFFF:
            raise DatapathError("handle %r must be an integer from 1 to 4294967295." % (handle,))
        self.interface, self.direction, self.name = interface, direction, name
        self.object_path, self.program, self.config = object_path, program, dict(config or {})
        self.priority, self.handle, self.force, self.verify = priority, handle, force, verify
        self.bpffs, self.state_dir, self.src, self.defines = bpffs_path, state_dir, src, dict(defines or {})
        self.pin_path, self.index_path = pin_paths(bpffs_path, interface, name, pin_path)

    @property
    def hook(self):
        return "%s %s" % (self.interface, self.direction)


def _describe(f):
    name = f["name"] or f["kind"]
    return "filter %r (%s, priority %d, handle %#x)" % (name, f["kind"], f["pref"], f["handle"])


def _view(req, f, record):
    if f is None:
        return {"attached": False, "name": req.name, "direction": req.direction}
    return {"attached": True, "name": req.name, "direction": req.direction, "priority": f["pref"],
            "handle": f["handle"], "tag": f["tag"], "object_sha256": (record or {}).get("object_sha256"),
            "config": (record or {}).get("config"), "program": (record or {}).get("program")}


def _observe(req, index):
    """(clsact present, the filters at the hook, an fd of our pinned program or None); call under the lock."""
    check_pin_kind(req.pin_path, req.name, req.interface, libbpf.PROG_TYPE_SCHED_CLS)
    present = tcattach.clsact_present(index)
    hook = tcattach.filters(index, req.direction) if present else []
    return present, hook, bpffs.get(os.path.join(req.pin_path, "prog"))


def deploy(req, check_mode=False):
    store = StateStore(req.state_dir)
    if not check_mode:
        bpffs.ensure_bpffs(req.bpffs)
    if not req.object_path or not os.path.isfile(req.object_path):
        raise DatapathError("object file %s does not exist on this host." % req.object_path)
    object_sha = sha256_file(req.object_path)
    index = attach.ifindex(req.interface)
    with store.lock():
        present, hook, old_fd = _observe(req, index)
        try:
            return _deploy(req, store, index, present, hook, old_fd, object_sha, check_mode)
        finally:
            if old_fd is not None:
                os.close(old_fd)


def _deploy(req, store, index, present, hook, old_fd, object_sha, check_mode):
    old_id = prog_id(old_fd) if old_fd is not None else None
    ours = [f for f in hook if old_id is not None and f["prog_id"] == old_id]
    here = next((f for f in ours if f["pref"] == req.priority and f["handle"] == req.handle), None)
    elsewhere = [f for f in ours if f is not here]
    foreign = [f for f in hook if f["pref"] == req.priority and f not in ours]
    if foreign and not req.force:
        raise DatapathError(
            "priority %d on %s is taken by %s that wirespeed did not add; choose another priority, or set "
            "force: true to replace it." % (req.priority, req.hook, _describe(foreign[0])))
    record = store.current(req.interface, req.name)
    loaded = None
    if req.verify or not check_mode:
        loaded = LoadedProgram(req.object_path, req.program, libbpf.PROG_TYPE_SCHED_CLS, req.config, req.pin_path)
    try:
        new_fp = fingerprint(loaded.fd) if loaded else None
        old_fp = fingerprint(old_fd) if old_fd is not None else None
        if loaded:
            same_prog = old_fp is not None and new_fp == old_fp and not loaded.recreated
        else:
            same_prog = record is not None and record.get("object_sha256") == object_sha \
                and record.get("config") == req.config
        changed = not (same_prog and here is not None and not elsewhere and not foreign)
        after = {"attached": True, "name": req.name, "direction": req.direction, "priority": req.priority,
                 "handle": req.handle, "tag": new_fp["tag"] if new_fp else None, "object_sha256": object_sha,
                 "config": req.config, "program": loaded.function if loaded else req.program}
        before = _view(req, here or (elsewhere[0] if elsewhere else None), record)
        if foreign:
            before["foreign"] = [_describe(f) for f in foreign]
        result = {
            "changed": changed, "diff": {"before": before, "after": after}, "direction": req.direction,
            "priority": req.priority, "handle": req.handle, "object_sha256": object_sha,
            "verified": loaded is not None, "maps": loaded.map_paths(req.pin_path) if loaded else {},
            "maps_recreated": loaded.recreated if loaded else [],
            "prog_id": old_id if not changed else None,
            "tag": (old_fp or {}).get("tag") if not changed else (new_fp or {}).get("tag"),
            "previous": record if changed else None,
        }
        if not changed or check_mode:
            return result
        _apply(req, store, index, present, loaded, here, elsewhere, foreign)
        result["prog_id"] = prog_id(loaded.fd)
        kept = store.keep_object(req.object_path, object_sha)
        store.record(req.interface, req.name, {
            "kind": "tc", "direction": req.direction, "object_sha256": object_sha, "object": kept,
            "program": loaded.function, "config": req.config, "defines": req.defines, "priority": req.priority,
            "handle": req.handle, "src": req.src, "prog_id": result["prog_id"], "tag": result["tag"],
            "pin_path": req.pin_path})
        return result
    finally:
        if loaded:
            loaded.close()


def _apply(req, store, index, present, loaded, here, elsewhere, foreign):
    undo = Undo()
    try:
        if not present:
            tcattach.add_clsact(index, req.interface)
            store.set_interface_flag(req.interface, CLSACT_FLAG, True)
            undo.add(tcattach.del_clsact, index)
        for f in foreign:  # only with force: a filter of another kind cannot be swapped in place
            tcattach.del_filter(index, req.direction, f["pref"], f["handle"], f["kind"])
        name = "wirespeed:%s" % req.name
        tcattach.set_filter(index, req.direction, loaded.fd, req.priority, req.handle, name,
                            here is not None, req.interface)
        if here is None:
            undo.add(tcattach.del_filter, index, req.direction, req.priority, req.handle)
        for f in elsewhere:  # a new priority: the old filter goes once the new one runs
            tcattach.del_filter(index, req.direction, f["pref"], f["handle"])
        loaded.pin(req.pin_path, req.index_path)
    except Exception:
        undo.run()
        raise


def remove(req, check_mode=False):
    store = StateStore(req.state_dir)
    index = attach.ifindex(req.interface)
    with store.lock():
        present, hook, old_fd = _observe(req, index)
        old_id = prog_id(old_fd) if old_fd is not None else None
        if old_fd is not None:
            os.close(old_fd)
        ours = [f for f in hook if old_id is not None and f["prog_id"] == old_id]
        foreign = [f for f in hook if req.force and f["pref"] == req.priority and f not in ours]
        record = store.current(req.interface, req.name)
        pinned = os.path.exists(req.pin_path) or os.path.islink(req.index_path)
        changed = bool(ours or foreign or pinned)
        result = {"changed": changed, "direction": req.direction, "prog_id": None, "tag": None, "maps": {},
                  "previous": record,
                  "diff": {"before": _view(req, ours[0] if ours else None, record),
                           "after": {"attached": False, "name": req.name, "direction": req.direction}}}
        if foreign:
            result["diff"]["before"]["foreign"] = [_describe(f) for f in foreign]
        if not changed or check_mode:
            return result
        for f in ours + foreign:
            tcattach.del_filter(index, req.direction, f["pref"], f["handle"], f["kind"])
        unpin(req.pin_path, req.index_path, req.bpffs)
        if present and store.interface_flag(req.interface, CLSACT_FLAG):
            left = tcattach.filters(index, "ingress") + tcattach.filters(index, "egress")
            if not left:
                tcattach.del_clsact(index)
                store.set_interface_flag(req.interface, CLSACT_FLAG, False)
        if record is not None or ours:
            store.record(req.interface, req.name, None)
        return result
