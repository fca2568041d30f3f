"""Checkpoints of a host's whole datapath (Records and map contents) and rollback to them, through the hooks.

A checkpoint holds every program this collection runs on the host (its
stored object, config, priority, mode or hook) and the contents of its maps.
Counters are not part of it: per-CPU arrays (action and reason counters) and
LRU maps (rate-limit state) and per-CPU hashes of records (the flow table) are
left out, and for hash (a per-CPU hash of u64 counters too: the firewall's
deny lists) and LPM maps only the set of keys decides whether two
checkpoints differ, since their values count hits.

A run brackets its changes with begin() and commit(). begin() writes the
datapath as it is to `pending`; commit() moves `pending` onto the history
stack only if the datapath differs from it now, so a run that changed nothing
leaves the history alone. A run that failed between the two leaves `pending`
behind; rollback and the next begin() treat it as the state before that run.
rollback() goes back one change per call; rollback(to="none") removes every
program this collection attached and records what was there, so a later
rollback brings it back. plan_rollback is the pure decision between two
checkpoints; the hooks carry it out.
"""

# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

from . import facts, hooks, info, prefilter
from .errors import DatapathError
from .kernel import bpffs, maps
from .kernel import netns as netns_
from .record.record import Record
from .record.store import DEFAULT_STATE_DIR, StateStore, read_json, write_json

HISTORY_KEEP = 10
# counters, flow state, and AF_XDP sockets (applications own them, the kernel refuses to read them back); a
# per-CPU hash of one u64 counter per key (the firewall's deny lists) is a set, kept like a hash
SKIP_TYPES = {maps.PERCPU_ARRAY, maps.LRU_PERCPU_HASH, maps.LRU_HASH, maps.XSKMAP}
KEYS_ONLY = {maps.HASH, maps.PERCPU_HASH, maps.LPM_TRIE, maps.DEVMAP_HASH}
FORMAT = 2  # 1: program records were flat dicts (read through Record.from_dict)


def _program_key(p):
    return "%s/%s" % (p["interface"], p["name"])


def record_of(p: dict) -> Record:
    """The Record of a checkpoint's program entry, whatever version wrote it."""
    return Record.from_dict(p["record"], p["interface"], p["name"])


def _map_contents(pin_path):
    """{map name: {type, key_size, value_size, entries: [[key hex, value hex]]}} of a program's maps."""
    out = {}
    mdir = os.path.join(pin_path, "maps")
    if not os.path.isdir(mdir):
        return out
    for name in sorted(os.listdir(mdir)):
        with maps.PinnedMap(os.path.join(mdir, name)) as m:
            if name.startswith(prefilter.PREFIX):
                continue  # derived from the deny lists, rebuilt from them (prefilter.py)
            if m.type in SKIP_TYPES or (m.type == maps.PERCPU_HASH and m.value_size != 8):
                continue  # counters and state; a per-CPU hash of one u64 counter per key is a set (deny lists)
            # an array's all-zero entries are left out (a load balancer's tables run to a million entries,
            # mostly unused); write_maps sets every entry a checkpoint leaves out of an array back to zero
            out[name] = {"type": m.type, "key_size": m.key_size, "value_size": m.value_size,
                         "entries": sorted([k.hex(), v.hex()] for k, v in m.dump().items()
                                           if m.type != maps.ARRAY or any(v))}
    return out


def digest(programs: list[dict]) -> str:
    """What makes two checkpoints the same datapath: program identities and map contents (keys only for sets)."""
    h = hashlib.sha256()
    for p in programs:
        h.update(json.dumps([_program_key(p), record_of(p).identity()], sort_keys=True).encode())
        for name, content in sorted(p["maps"].items()):
            if content["type"] in KEYS_ONLY:
                entries = [k for k, _v in content["entries"]]
            else:
                entries = content["entries"]
            h.update(json.dumps([name, entries]).encode())
    return h.hexdigest()


def same(a: dict, b: dict) -> bool:
    """Two checkpoints hold the same datapath (digests recomputed, so any format compares)."""
    return digest(a["programs"]) == digest(b["programs"])


def take(state_dir: str = DEFAULT_STATE_DIR) -> dict:
    """The datapath as it runs now: programs from the state record, maps from bpffs."""
    programs = []
    for ifname, name, record in StateStore(state_dir).records():
        programs.append({"interface": ifname, "name": name, "record": record.to_dict(),
                         "maps": _map_contents(record.pin_path) if record.pin_path else {}})
    return {"format": FORMAT, "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "programs": programs, "digest": digest(programs)}


def fingerprint(snap: dict, bpffs_path: str = bpffs.DEFAULT_BPFFS) -> str:
    """The datapath as the kernel runs it now: the checkpoint's digest (programs, map contents), what is attached
    where on those interfaces (program ids, chain order, interface indexes) and the address the controller
    connects from (the management guard's), so that any drift or reload changes it."""
    ifnames = [p["interface"] for p in snap["programs"]]
    netns_of = {p["interface"]: record_of(p).netns for p in snap["programs"] if record_of(p).netns}
    live = [snap["digest"], info.attachments(ifnames, bpffs_path, netns_of), facts.controller_address()]
    return hashlib.sha256(json.dumps(live, sort_keys=True).encode()).hexdigest()


def describe(snap: dict) -> list[str]:
    """One line per program of a checkpoint, for people."""
    lines = []
    for p in snap["programs"]:
        r = record_of(p)
        entries = sum(len(m["entries"]) for m in p["maps"].values())
        lines.append("%s %s: %s priority %s, object %s, %d map entries"
                     % (p["interface"], hooks.hook_for(r.hook).where(r), p["name"], r.priority,
                        (r.object_sha256 or "?")[:12], entries))
    return lines or ["no wirespeed programs"]


class History:
    """The checkpoints of one host: `pending` and a numbered stack under <state_dir>/checkpoints."""

    def __init__(self, state_dir=DEFAULT_STATE_DIR):
        self.state_dir = state_dir
        self.directory = os.path.join(state_dir, "checkpoints")
        self.pending_path = os.path.join(self.directory, "pending.json")
        self.armed_path = os.path.join(self.directory, "armed.json")  # a change waiting for its confirm
        self.boot_path = os.path.join(state_dir, "boot.json")  # the datapath the host restores at boot
        self.converged_path = os.path.join(state_dir, "converged.json")  # the intent the datapath was last left at

    def _write(self, path, snap):
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        write_json(path, snap)

    @staticmethod
    def _read(path):
        return read_json(path, "checkpoint", "move it aside and run again")

    def numbered(self) -> list[str]:
        if not os.path.isdir(self.directory):
            return []
        names = [n for n in os.listdir(self.directory) if n.endswith(".json") and n[:-5].isdigit()]
        return sorted(os.path.join(self.directory, n) for n in names)

    def pending(self) -> dict | None:
        return self._read(self.pending_path)

    def push(self, snap: dict) -> None:
        existing = self.numbered()
        number = int(os.path.basename(existing[-1])[:-5]) + 1 if existing else 1
        self._write(os.path.join(self.directory, "%06d.json" % number), snap)
        for old in self.numbered()[:-HISTORY_KEEP]:
            os.unlink(old)

    def top(self) -> tuple[str | None, dict | None]:
        existing = self.numbered()
        return (existing[-1], self._read(existing[-1])) if existing else (None, None)

    def armed(self) -> dict | None:
        """The commit-confirmed arming of this host ({token, deadline, timeout, ...}), or None."""
        return read_json(self.armed_path, "confirm arming", "remove it to disarm")

    def disarm(self) -> None:
        """Forget the arming, and stop its systemd timer (a watchdog process sees the arming gone by itself)."""
        armed = self.armed()
        if armed is None:
            return
        timer = armed.get("timer") or {}
        if timer.get("kind") == "systemd":
            subprocess.run(["systemctl", "stop", timer["unit"] + ".timer"], capture_output=True, check=False)
        os.unlink(self.armed_path)

    @property
    def expiry_note(self) -> str:
        return StateStore(self.state_dir).expiry_note

    def clear_expiry_note(self) -> None:
        if os.path.exists(self.expiry_note):
            os.unlink(self.expiry_note)

    def boot(self) -> dict | None:
        return read_json(self.boot_path, "boot datapath", "run site.yml again to write a new one")

    def save_boot(self, snap: dict) -> bool:
        """Make snap the datapath the host restores at boot; False when it already is."""
        current = self.boot()
        if current is not None and same(current, snap):
            return False
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        write_json(self.boot_path, snap)
        return True

    def clear_boot(self) -> bool:
        if not os.path.exists(self.boot_path):
            return False
        os.unlink(self.boot_path)
        return True

    def converged(self, intent: str | None, now: dict, bpffs_path: str) -> bool:
        """Whether the datapath is still exactly as a run of this same intent left it (nothing to do)."""
        if not intent:
            return False
        last = read_json(self.converged_path, "converged record", "remove it")
        return bool(last) and last.get("intent") == intent and last.get("fingerprint") == fingerprint(now, bpffs_path)

    def mark_converged(self, intent: str | None, now: dict, bpffs_path: str) -> None:
        """Remember that a whole run of `intent` ended with the datapath as it is now; without intent, forget."""
        if not intent:
            if os.path.exists(self.converged_path):
                os.unlink(self.converged_path)
            return
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        write_json(self.converged_path, {"intent": intent, "fingerprint": fingerprint(now, bpffs_path),
                                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def drop_pending(self) -> None:
        if os.path.exists(self.pending_path):
            os.unlink(self.pending_path)

    def settle_pending(self, now: dict) -> bool:
        """A pending checkpoint that differs from now is the state before an unfinished run: keep it."""
        pending = self.pending()
        unfinished = pending is not None and not same(pending, now)
        if unfinished:
            self.push(pending)
        self.drop_pending()
        return unfinished


def refuse_if_armed(history: History, doing: str = "beginning another") -> None:
    armed = history.armed()
    if armed is not None:
        left = max(0, int(armed["deadline"] - time.time()))
        raise DatapathError(
            "a change begun at %s is still waiting for its confirm (%d s left before this host rolls it back); "
            "confirm it with datapath_checkpoint step=confirm or take it back with step=abort before %s."
            % (armed["armed_at"], left, doing), code="armed")


def begin(state_dir: str = DEFAULT_STATE_DIR, check_mode: bool = False, *, intent: str | None = None,
          bpffs_path: str = bpffs.DEFAULT_BPFFS) -> dict:
    """Checkpoint the datapath before a run's changes. With the run's intent (a digest of everything the
    controller asks for), a datapath still exactly as the last run of that intent left it is reported
    converged, and nothing is written: the run has nothing to do."""
    store = StateStore(state_dir)
    with store.lock():
        history = History(state_dir)
        refuse_if_armed(history)
        now = take(state_dir)
        if history.converged(intent, now, bpffs_path):
            return {"changed": False, "converged": True, "checkpoint": now["digest"], "programs": describe(now)}
        if check_mode:
            return {"changed": False, "converged": False, "checkpoint": now["digest"], "programs": describe(now)}
        history.clear_expiry_note()  # a new run: the last one's rollback has been reported or is moot
        settled = history.settle_pending(now)
        history._write(history.pending_path, now)
        return {"changed": False, "converged": False, "checkpoint": now["digest"], "programs": describe(now),
                "recorded_unfinished_run": settled}


def compare(intent: str | None, state_dir: str = DEFAULT_STATE_DIR, bpffs_path: str = bpffs.DEFAULT_BPFFS) -> dict:
    """Whether the datapath is still exactly as the last run of `intent` left it; reads only (no lock, so a run
    going on elsewhere can only make it answer false, and the caller then does the whole run)."""
    now = take(state_dir)
    return {"changed": False, "converged": History(state_dir).converged(intent, now, bpffs_path),
            "checkpoint": now["digest"]}


def commit(state_dir: str = DEFAULT_STATE_DIR, check_mode: bool = False, *, intent: str | None = None,
           bpffs_path: str = bpffs.DEFAULT_BPFFS) -> dict:
    store = StateStore(state_dir)
    with store.lock():
        history = History(state_dir)
        refuse_if_armed(history, "committing")  # an armed change ends with confirm or abort
        now = take(state_dir)
        pending = history.pending()
        recorded = pending is not None and not same(pending, now)
        boot = False
        if not check_mode:
            history.settle_pending(now)
            if history.armed() is None:  # a run without confirm_timeout counts as confirmed when it ends
                boot = history.save_boot(now)
            history.mark_converged(intent, now, bpffs_path)
        return {"changed": False, "recorded": recorded, "checkpoint": now["digest"], "programs": describe(now),
                "boot_datapath_updated": boot}


def rollback(to: str = "previous", bpffs_path: str | None = None, state_dir: str = DEFAULT_STATE_DIR,
             check_mode: bool = False) -> dict:
    """Bring the datapath back to the checkpoint before the last change (or to nothing); it becomes the boot one."""
    if to not in ("previous", "none"):
        raise DatapathError("rollback_to %r is not one of previous, none." % (to,))
    with StateStore(state_dir).lock():
        return _rollback(to, bpffs_path or bpffs.DEFAULT_BPFFS, state_dir, check_mode)


def _rollback(to, bpffs_path, state_dir, check_mode):
    history = History(state_dir)
    if not check_mode:
        history.clear_expiry_note()  # an operator's rollback is a deliberate converge
    now = take(state_dir)
    source = None
    if to == "none":
        target = {"programs": [], "digest": digest([])}
    else:
        pending = history.pending()
        if pending is not None and not same(pending, now):
            source, target = "pending", pending
        else:
            path, target = history.top()
            source = path
        if target is None:
            return {"changed": False, "restored": None, "before": describe(now), "after": describe(now),
                    "msg": "no earlier datapath is recorded on this host; nothing to roll back to."}
    steps = plan_rollback(now, target)
    result = {"changed": bool(steps), "check_mode": check_mode,
              "restored": target.get("taken_at") if to == "previous" else "none",
              "before": describe(now), "after": describe(target), "actions": [describe_step(s) for s in steps],
              "diff": {"before": "\n".join(describe(now)) + "\n", "after": "\n".join(describe(target)) + "\n"}}
    if check_mode:
        return result
    for step in steps:
        apply_step(step, bpffs_path, state_dir)
    if to == "none":
        if now["programs"]:
            history.push(now)
        history.drop_pending()
        history.clear_boot()
    else:
        if source == "pending":
            history.drop_pending()
        else:
            os.unlink(source)
        history.save_boot(take(state_dir))
    history.disarm()  # a change waiting for its confirm is taken back by this rollback
    return result


# the plan: pure over two checkpoints --------------------------------------------
def plan_rollback(now: dict, target: dict) -> list[tuple]:
    """[(action, program entry, detail)] that turn checkpoint `now` into `target`; action is remove, deploy or maps.

    Programs that stay or come back are deployed before the others are
    removed, so a chain never empties (and detaches) on the way; a program
    that moves to another place of its hook (tc ingress to egress) is removed
    first.
    """
    current = {_program_key(p): p for p in now["programs"]}
    wanted = {_program_key(p): p for p in target["programs"]}
    moves = [k for k in current if k in wanted and _moves(record_of(current[k]), record_of(wanted[k]))]
    steps = [("remove", current[k], None) for k in moves]
    for key, p in wanted.items():
        old = current.get(key) if key not in moves else None
        if old is None or record_of(old).identity() != record_of(p).identity():
            steps.append(("deploy", p, None))
        changes = map_changes(p, old)
        if changes:
            steps.append(("maps", p, changes))
    steps += [("remove", p, None) for k, p in current.items() if k not in wanted]
    return steps


def _moves(old: Record, new: Record) -> bool:
    """Whether going from old to new needs a remove first (another hook, or another place of it)."""
    return old.hook != new.hook or not hooks.hook_for(new.hook).same_place(old, new)


def map_changes(p: dict, current: dict | None) -> list[str]:
    out = []
    have = (current or {}).get("maps", {})
    for name, content in sorted(p["maps"].items()):
        want = dict(content["entries"])
        got = dict(have.get(name, {}).get("entries", []))
        if content["type"] in KEYS_ONLY:
            plus, minus = len(want.keys() - got.keys()), len(got.keys() - want.keys())
            if plus or minus:
                out.append("%s +%d -%d" % (name, plus, minus))
        elif want != got:
            out.append("%s %d values" % (name, sum(1 for k in want if got.get(k) != want[k])))
    return out


def describe_step(step: tuple) -> str:
    action, p, detail = step
    key = _program_key(p)
    if action == "deploy":
        r = record_of(p)
        return "deploy %s (object %s, priority %s)" % (key, r.object_sha256[:12], r.priority)
    if action == "maps":
        return "maps of %s: %s" % (key, ", ".join(detail))
    return "remove %s" % key


# carrying it out ------------------------------------------------------------------
def apply_step(step: tuple, bpffs_path: str, state_dir: str) -> None:
    action, p, _detail = step
    record = record_of(p)
    hook_class = hooks.hook_for(record.hook)
    if action == "remove":
        hooks.remove(hook_class.from_record(record, bpffs_path, state_dir))
    elif action == "deploy":
        for path in [record.object] + list(record.objects.values()):
            if not path or not os.path.exists(path):
                raise DatapathError("the stored object of %s on %s (%s) is missing from %s; it cannot be restored, "
                                    "so deploy it again with its playbook." % (p["name"], p["interface"], path,
                                                                               state_dir))
        hooks.deploy(hook_class.from_record(record, bpffs_path, state_dir))
    else:
        write_maps(p)


def write_maps(p: dict) -> None:
    """Make each recorded map hold the recorded keys; live values (hit counts) of kept keys stay. Written from
    inside the program's network namespace, where a DEVMAP's interface indexes mean its interfaces."""
    with netns_.entered(record_of(p).netns):
        _write_maps(p)


def _write_maps(p: dict) -> None:
    mdir = os.path.join(record_of(p).pin_path, "maps")
    index = prefilter.for_map(os.path.join(mdir, prefilter.LISTS[0]))
    for name in prefilter.LISTS if index else ():
        if name in p["maps"]:  # marked before they are listed: the index stays a superset
            index.cover(name, [bytes.fromhex(k) for k, _v in p["maps"][name]["entries"]])
    for name, content in sorted(p["maps"].items()):
        with maps.PinnedMap(os.path.join(mdir, name)) as m:
            if (m.key_size, m.value_size) != (content["key_size"], content["value_size"]):
                raise DatapathError("map %s of %s on %s changed its layout since the checkpoint; deploy the "
                                    "program again with its playbook." % (name, p["name"], p["interface"]))
            want = {bytes.fromhex(k): bytes.fromhex(v) for k, v in content["entries"]}
            got = m.dump()
            if content["type"] in KEYS_ONLY:
                m.delete([k for k in got if k not in want])
                # a per-CPU counter recorded on a host with another CPU count (or before the map was per-CPU)
                # starts at zero: only the keys matter
                m.write([(k, v if len(v) == m.slot_size else bytes(m.slot_size)) for k, v in want.items()
                         if k not in got])
            else:
                if content["type"] == maps.ARRAY:  # entries left out of the checkpoint were zero
                    m.delete([k for k, v in got.items() if k not in want and any(v)])
                m.write([(k, v) for k, v in want.items() if got.get(k) != v])
    if index:
        index.refresh()  # bits of removed entries cleared, the index verified
