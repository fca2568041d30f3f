# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ssh_limiter: the exact packet at which a source is limited and released, on a clock the test moves."""

import os
import random
import subprocess
import sys

import pytest
from conftest import BPF
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import info, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import libbpf

XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2
LIMITER = os.path.join(BPF, "ssh_limiter.bpf.c")
SECOND = 10 ** 9
START = 1000 * SECOND
ALLOWED_V4, ALLOWED_V6 = "192.0.2.10", "2001:db8:a::10"


class Limiter:
    def __init__(self, dut, obj, **config):
        result = dut.deploy("sl", obj, config={"ports": [22, 2222], **config})
        self.maps = result["maps"]
        mapsync.sync(self.maps["allow_v4"], entries=["%s/32" % ALLOWED_V4])
        mapsync.sync(self.maps["allow_v6"], entries=["%s/128" % ALLOWED_V6])
        self.fd = libbpf.obj_get(os.path.join(dut.pin_root, "sl", "prog"))
        self.now = START
        self.tick(0)

    def tick(self, ns):
        self.now += ns
        mapsync.sync(self.maps["ws_clock"], entries={0: {"offset_ns": 0, "frozen_ns": self.now}})

    def send(self, src, flags="S", dport=22):
        ip = IP(src=src, dst="198.18.0.1") if ":" not in src else IPv6(src=src, dst="2001:db8::1")
        frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip
                      / TCP(sport=40000, dport=dport, flags=flags))
        return libbpf.test_run(self.fd, frame)[0]

    def reasons(self):
        return {k: v["packets"] for k, v in info.reason_counters(self.maps["ws_reasons"]).items() if v["packets"]}

    def close(self):
        os.close(self.fd)


@pytest.fixture
def limiter(dut, objects):
    made = []

    def make(**config):
        made.append(Limiter(dut, objects["build"](LIMITER), **config))
        return made[-1]
    yield make
    for lim in made:
        lim.close()


@pytest.mark.parametrize("src", ["203.0.113.5", "2001:db8:bad::5"])
def test_limit_then_ban_then_release(limiter, src):
    lim = limiter(max_new=5, window_ms=60000, ban_s=600)
    assert [lim.send(src) for _i in range(5)] == [XDP_PASS] * 5
    assert lim.send(src) == XDP_DROP  # the sixth SYN in the window
    assert lim.reasons() == {"syn_limit": 1}
    assert lim.send(src, flags="A") == XDP_DROP  # banned: its other packets to the port too
    assert lim.send(src) == XDP_DROP
    assert lim.reasons() == {"syn_limit": 1, "banned": 2}
    assert lim.send(src, dport=80) == XDP_PASS  # not a protected port
    lim.tick(599 * SECOND)
    assert lim.send(src) == XDP_DROP  # one second of ban left
    lim.tick(1 * SECOND)
    assert lim.send(src) == XDP_PASS  # released, and counting again from one
    assert [lim.send(src) for _i in range(4)] == [XDP_PASS] * 4
    assert lim.send(src) == XDP_DROP


def test_without_ban_only_the_excess_drops_and_the_window_slides(limiter):
    lim = limiter(max_new=3, window_ms=10000, ban_s=0)
    src = "198.51.100.7"
    assert [lim.send(src) for _i in range(5)] == [XDP_PASS] * 3 + [XDP_DROP] * 2
    assert lim.send(src, flags="A") == XDP_PASS  # no ban: established traffic flows
    lim.tick(9 * SECOND)
    assert lim.send(src) == XDP_DROP
    lim.tick(1 * SECOND)
    assert lim.send(src) == XDP_PASS  # a new window
    assert lim.reasons() == {"syn_limit": 3}


def test_allow_listed_sources_are_never_limited(limiter):
    lim = limiter(max_new=1, window_ms=60000, ban_s=600)
    for src in (ALLOWED_V4, ALLOWED_V6):
        assert [lim.send(src) for _i in range(20)] == [XDP_PASS] * 20
    assert lim.reasons() == {}


def test_syn_ack_and_other_ports_are_not_counted(limiter):
    lim = limiter(max_new=2, window_ms=60000, ban_s=600)
    src = "203.0.113.77"
    assert [lim.send(src, flags="SA") for _i in range(10)] == [XDP_PASS] * 10
    assert [lim.send(src, dport=443) for _i in range(10)] == [XDP_PASS] * 10
    assert [lim.send(src, dport=2222) for _i in range(3)] == [XDP_PASS, XDP_PASS, XDP_DROP]


def test_port_list_is_read_to_its_last_entry_and_all_ports_ignores_it(limiter):
    full = list(range(2000, 2016))  # 16 ports, the most a list holds
    lim = limiter(ports=full, max_new=1, window_ms=60000, ban_s=0)
    assert [lim.send("203.0.113.80", dport=2015) for _i in range(2)] == [XDP_PASS, XDP_DROP]
    assert [lim.send("203.0.113.80", dport=22) for _i in range(3)] == [XDP_PASS] * 3  # not on this list
    every = limiter(ports=[], all_ports=True, max_new=1, window_ms=60000, ban_s=0)
    assert [every.send("203.0.113.81", dport=9) for _i in range(2)] == [XDP_PASS, XDP_DROP]


def test_port_list_longer_than_the_program_holds_is_refused(dut, objects):
    with pytest.raises(DatapathError) as err:
        Limiter(dut, objects["build"](LIMITER), ports=list(range(2000, 2017)))
    assert err.value.message == ("config key 'ports' must be a list of at most 16 integers from 0 to 65535 "
                                 "(__u16[16]); the entries left out are 0; got %r." % list(range(2000, 2017)))


def model_verdicts(events, limit, window, ban):
    """The limiter's decisions as a plain state machine."""
    state, out = {}, []
    for now, src, flags, dport in events:
        if dport not in (22, 2222) or src in (ALLOWED_V4, ALLOWED_V6):
            out.append((XDP_PASS, None))
            continue
        st = state.get(src)
        if flags != "S":
            banned = st is not None and st["banned"] > now
            out.append((XDP_DROP, "banned") if banned else (XDP_PASS, None))
            continue
        if st is None:
            state[src] = {"start": now, "count": 1, "banned": 0}
            out.append((XDP_PASS, None) if limit >= 1 else (XDP_DROP, "syn_limit"))
            continue
        if st["banned"] > now:
            out.append((XDP_DROP, "banned"))
            continue
        if now - st["start"] >= window:
            st["start"], st["count"] = now, 0
        st["count"] += 1
        if st["count"] > limit:
            if ban:
                st["banned"] = now + ban
            out.append((XDP_DROP, "syn_limit"))
        else:
            out.append((XDP_PASS, None))
    return out


def test_differential_10000_packets(limiter):
    limit, window_s, ban_s = 4, 30, 45
    lim = limiter(max_new=limit, window_ms=window_s * 1000, ban_s=ban_s)
    rng = random.Random(7)
    sources = ["203.0.113.%d" % i for i in range(1, 6)] + ["2001:db8:bad::%d" % i for i in range(1, 4)] + \
        [ALLOWED_V4, ALLOWED_V6]
    events = []
    for _i in range(10000):
        lim_step = rng.choice([0, 0, 0, 0, SECOND // 10, SECOND, 5 * SECOND, 20 * SECOND])
        events.append((lim_step, rng.choice(sources), rng.choice(["S", "S", "S", "A", "SA", "PA"]),
                       rng.choice([22, 22, 2222, 80])))
    timeline, now = [], START
    for step, src, flags, dport in events:
        now += step
        timeline.append((now, src, flags, dport))
    expected = model_verdicts(timeline, limit, window_s * SECOND, ban_s * SECOND)
    mismatches = []
    for i, ((step, src, flags, dport), want) in enumerate(zip(events, expected)):
        if step:
            lim.tick(step)
        got = lim.send(src, flags, dport)
        assert got != XDP_ABORTED
        if got != want[0]:
            mismatches.append((i, src, flags, dport, got, want))
    assert mismatches == [], "%d mismatches, first %s" % (len(mismatches), mismatches[:3])
    counted = lim.reasons()
    wanted = {}
    for _verdict, reason in expected:
        if reason:
            wanted[reason] = wanted.get(reason, 0) + 1
    assert counted == wanted and set(wanted) == {"syn_limit", "banned"}


def test_end_to_end_on_veth_with_real_syns(dut, limiter):
    """Real TCP connection attempts from the peer: the fourth is refused at XDP, the allow list is not."""
    lim = limiter(max_new=3, window_ms=60000, ban_s=600)
    mapsync.sync(lim.maps["ws_clock"], entries={0: {"offset_ns": 0, "frozen_ns": 0}})  # the real clock
    script = ("import socket,sys\n"
              "ok=0\n"
              "for i in range(6):\n"
              "    s=socket.socket(); s.settimeout(0.3)\n"
              "    try: s.connect((sys.argv[1], 22)); ok+=1\n"
              "    except ConnectionRefusedError: ok+=1\n"
              "    except OSError: pass\n"
              "    s.close()\n"
              "print(ok)\n")
    answered = subprocess.run(["ip", "netns", "exec", dut.peer, sys.executable, "-c", script, dut.dut_ip],
                              capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    assert answered == "3"  # three SYNs reached the stack (refused: no sshd), the rest were dropped
    assert lim.reasons().get("syn_limit") == 1 and lim.reasons().get("banned", 0) >= 1
