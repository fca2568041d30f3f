# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One snapshot of a lab host's whole datapath, to prove a failed run left it byte-identical.

Read on the host over SSH with the kernel's own tools, not with the engine
under test: the XDP program and mode of every interface, every TC filter
(program id and tag) at clsact ingress and egress, every pin under the
collection's bpffs folder (programs by id and tag, maps by their full
contents, per-CPU values and the chain's program array included), and the
bytes of every file of the state directory (the host lock aside, which only
serialises runs).

Programs write some maps themselves while packets flow (action and reason
counters, the hit counters in the values of hash and LPM maps, a limiter's
per-source state), and the test's own SSH session is traffic. So a snapshot
is taken twice before a case: the maps whose contents moved in between are
compared by their keys alone, every other section byte for byte.
"""

import hashlib
import json

SCRIPT = r"""python3 - <<'PY'
import glob, hashlib, json, os, subprocess

def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout

out = {}
for link in json.loads(run("ip", "-d", "-j", "link", "show") or "[]"):
    dev = link["ifname"]
    out["link " + dev] = json.dumps({"ifindex": link.get("ifindex"), "xdp": link.get("xdp")}, sort_keys=True)
    for direction in ("ingress", "egress"):
        out["tc %s %s" % (dev, direction)] = run("tc", "-j", "filter", "show", "dev", dev, direction).strip()
for pin in sorted(glob.glob("/sys/fs/bpf/wirespeed/**", recursive=True)):
    if not os.path.isfile(pin):
        out["pin " + pin] = "folder"
        continue
    p = json.loads(run("bpftool", "-j", "prog", "show", "pinned", pin) or "{}")
    if "id" in p:
        out["pin " + pin] = json.dumps({"id": p["id"], "tag": p["tag"], "name": p.get("name")}, sort_keys=True)
    else:
        out["pin " + pin] = run("bpftool", "-j", "map", "dump", "pinned", pin).strip()
for path in sorted(glob.glob("/var/lib/wirespeed/**", recursive=True)):
    if os.path.isfile(path) and not path.endswith((".lock", "watchdog.log")):
        with open(path, "rb") as fh:
            out["file " + path] = hashlib.sha256(fh.read()).hexdigest()
print(json.dumps(out))
PY
"""


def take(lab, host):
    """{section: text} of the host's datapath now."""
    out = lab.ssh(host, SCRIPT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def differences(before, after):
    """Sections that differ between two snapshots, for an assertion message that says where."""
    keys = sorted(set(before) | set(after))
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


def digest(snap):
    return hashlib.sha256(json.dumps(snap, sort_keys=True).encode()).hexdigest()


def _keys_only(text):
    try:
        entries = json.loads(text)
    except ValueError:
        return text
    return json.dumps(sorted(json.dumps(e.get("key"), sort_keys=True) for e in entries if isinstance(e, dict)))


def _reduce(snap, volatile):
    return {k: (_keys_only(v) if k in volatile else v) for k, v in snap.items()}


def volatile(lab, host):
    """The pins whose contents move by themselves (traffic-written), from two readings a moment apart."""
    first, second = take(lab, host), take(lab, host)
    return {k for k in differences(first, second) if k.startswith("pin ")}


def before(lab, host, moving=None):
    """(snapshot, volatile sections) before a case; pass `moving` (volatile()) to save a reading."""
    if moving is None:
        moving = volatile(lab, host)
    return _reduce(take(lab, host), moving), moving


def changed(lab, host, earlier):
    """What differs now from `before()`'s snapshot, traffic-written values aside: {} when nothing did."""
    snap, moving = earlier
    return differences(snap, _reduce(take(lab, host), moving))
