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
per-source state), and the test's own SSH session is traffic. So volatile()
takes a snapshot twice: the maps whose contents moved in between are compared
by their keys alone from then on, every other section byte for byte.

A map's contents are digested on the host (sha256 of bpftool's JSON dump, or
of its sorted keys for a volatile map): the firewall's prefilter arrays dump
to tens of megabytes, which would otherwise cross SSH and be parsed twice per
snapshot. A difference names the section; read it on the host to see how.
"""

import hashlib
import json

SCRIPT = r"""python3 - <<'PY'
import glob, hashlib, json, os, subprocess

VOLATILE = set(json.loads('@VOLATILE@'))

def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout

def digest(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

def keys_digest(text):
    try:
        entries = json.loads(text)
    except ValueError:
        return digest(text)
    keys = sorted(json.dumps(e.get("key"), sort_keys=True) for e in entries if isinstance(e, dict))
    return "keys " + digest(json.dumps(keys))

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
        text = run("bpftool", "-j", "map", "dump", "pinned", pin).strip()
        out["pin " + pin] = keys_digest(text) if "pin " + pin in VOLATILE else digest(text)
for path in sorted(glob.glob("/var/lib/wirespeed/**", recursive=True)):
    if os.path.isfile(path) and not path.endswith((".lock", "watchdog.log")):
        with open(path, "rb") as fh:
            out["file " + path] = hashlib.sha256(fh.read()).hexdigest()
print(json.dumps(out))
PY
"""


def take(lab, host, moving=()):
    """{section: text or digest} of the host's datapath now; the maps named in `moving` by their keys alone."""
    out = lab.ssh(host, SCRIPT.replace("@VOLATILE@", json.dumps(sorted(moving))))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def differences(before, after):
    """Sections that differ between two snapshots, for an assertion message that says where."""
    keys = sorted(set(before) | set(after))
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


def digest(snap):
    return hashlib.sha256(json.dumps(snap, sort_keys=True).encode()).hexdigest()


def volatile(lab, host):
    """The pins whose contents move by themselves (traffic-written), from two readings a moment apart."""
    first, second = take(lab, host), take(lab, host)
    return {k for k in differences(first, second) if k.startswith("pin ")}


def before(lab, host, moving=None):
    """(snapshot, volatile sections) before a case; pass `moving` (volatile()) to save two readings."""
    if moving is None:
        moving = volatile(lab, host)
    return take(lab, host, moving), moving


def changed(lab, host, earlier):
    """What differs now from `before()`'s snapshot, traffic-written values aside: {} when nothing did."""
    return after(lab, host, earlier)[0]


def after(lab, host, earlier):
    """(what differs now from `before()`'s snapshot, and the snapshot of now in before()'s form): a caller that
    finds nothing changed can pass the second as the next case's before() and save a reading."""
    snap, moving = earlier
    now = take(lab, host, moving)
    return differences(snap, now), (now, moving)
