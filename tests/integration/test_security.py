# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security: what the engine leaves on a host is root's alone, and the SSH limiter keeps an allow-listed client
logging in while a flood of spoofed sources fills its table (part of the reliability catalogue, docs/reliability.md).
"""

import json
import os
import pickle
import random
import socket
import stat
import subprocess
import sys
import threading
import time

from conftest import BPF
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.store import StateStore

LIMITER = os.path.join(BPF, "ssh_limiter.bpf.c")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def _modes(root):
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            out[path] = stat.S_IMODE(os.lstat(path).st_mode)
    return out


def test_state_and_pins_are_not_readable_or_writable_by_other_users(dut, objects):
    result = dut.deploy("sl", objects["build"](LIMITER), config={"ports": [22]})
    mapsync.sync(result["maps"]["allow_v4"], entries=["192.0.2.10/32"], state_dir=dut.state_dir)
    state = _modes(dut.state_dir)
    pins = _modes(dut.pin_root)
    assert state and pins
    open_state = {p: oct(m) for p, m in state.items() if m & 0o077}
    assert not open_state, open_state  # the state directory and its files: no group or other bits
    open_pins = {p: oct(m) for p, m in pins.items() if os.path.isfile(p) and m & 0o066}
    assert not open_pins, open_pins  # programs and maps: nobody else reads or writes them
    fresh = os.path.join(dut.state_dir, "fresh", "state")  # a state directory the engine makes itself
    StateStore(fresh).keep_object(objects["build"](LIMITER), "0" * 64)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(fresh, "objects", "0" * 64 + ".o")).st_mode) == 0o600
    for path in (os.path.join(dut.state_dir, "state.json"), os.path.join(dut.pin_root, "sl", "maps", "allow_v4")):
        denied = subprocess.run(NOBODY + ["cat", path], capture_output=True, text=True, check=False)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, (path, denied)


def _frames(dst_mac, src_mac, dst_ip, count, seed=7):
    """count TCP SYNs to port 22 from distinct spoofed sources (198.51.0.0/16 and 203.0.0.0/16)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        src = "%d.%d.%d.%d" % (((198, 51) if i % 2 else (203, 0)) + (i // 256 % 256, i % 256))
        out.append(bytes(Ether(dst=dst_mac, src=src_mac) / IP(src=src, dst=dst_ip)
                         / TCP(sport=rnd.randrange(1024, 65535), dport=22, flags="S")))
    return out


def _mac(ns, ifname):
    out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", "dev", ifname], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)[0]["address"]


def test_an_allow_listed_client_logs_in_through_a_flood_of_10k_spoofed_sources(dut, objects):
    result = dut.deploy("sl", objects["build"](LIMITER), config={"ports": [22], "max_new": 3, "window_ms": 60000,
                                                                 "ban_s": 600})
    mapsync.sync(result["maps"]["allow_v4"], entries=["%s/32" % dut.peer_ip], state_dir=dut.state_dir)
    frames = _frames(_mac(dut.dut, dut.ifname), _mac(dut.peer, dut.peer_if), dut.dut_ip, 10000)
    with netns(dut.dut):  # a listener standing in for sshd
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((dut.dut_ip, 22))
        server.listen(512)
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _addr = server.accept()
                conn.close()
            except OSError:
                continue
    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    flood = "import socket,sys,pickle\n" \
            "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind((sys.argv[1],0))\n" \
            "frames=pickle.load(sys.stdin.buffer)\n" \
            "import time\n" \
            "for r in range(5):\n" \
            "    for f in frames:\n" \
            "        while True:\n" \
            "            try: s.send(f); break\n" \
            "            except OSError: time.sleep(0.0005)\n"
    sender = None
    try:
        sender = subprocess.Popen(["ip", "netns", "exec", dut.peer, sys.executable, "-c", flood, dut.peer_if],
                                  stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        sender.stdin.write(pickle.dumps(frames))
        sender.stdin.flush()
        logins, tried = 0, 0
        deadline = time.monotonic() + 20
        while (sender.poll() is None and time.monotonic() < deadline) or tried < 20:
            with netns(dut.peer):
                client = socket.socket()
                client.settimeout(2)
                try:
                    client.connect((dut.dut_ip, 22))
                    logins += 1
                except OSError:
                    pass
                finally:
                    client.close()
            tried += 1
            if tried >= 200:
                break
        _out, err = sender.communicate(timeout=30)
        assert sender.returncode == 0, err
    finally:
        if sender is not None and sender.poll() is None:
            sender.kill()  # only the sender this test started
            sender.wait()
        stop.set()
        acceptor.join(timeout=2)
        server.close()
    reasons = {k: v["packets"] for k, v in info.reason_counters(result["maps"]["ws_reasons"]).items()
               if v["packets"]}
    # each spoofed source sent 5 SYNs against a limit of 3: its 4th and 5th are dropped (limited, then banned)
    assert reasons.get("syn_limit", 0) + reasons.get("banned", 0) >= 10000, reasons
    assert tried >= 20 and logins == tried, (logins, tried, reasons)  # every login of the allow-listed client
    allow = mapsync.sync(result["maps"]["allow_v4"], entries=["%s/32" % dut.peer_ip], state_dir=dut.state_dir)
    assert not allow["changed"]  # the allow decision is still there: an LPM map the flood never writes
