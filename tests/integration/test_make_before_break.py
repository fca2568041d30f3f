# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make before break: a denied source sends all through an upgrade that changes a map's type, a capacity change
and a checkpoint rollback, and not one of its datagrams reaches the receiver.

Each run waits for events, not time: the change starts once the live deny list has counted the source's
packets, and the sender is stopped once the new version's deny list has counted some too, so traffic
provably spans the swap. A control run with the old engine path (the map recreated empty, no fill) shows
the receiver does count leaks.
"""

import os
import socket
import subprocess
import tarfile
import time

import pytest
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import carry, checkpoint, hooks, mapsync
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import maps
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program import compile as bpfcc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREVIOUS_RELEASE = "567894b"  # the firewall before deny_v4/deny_v6 became per-CPU hashes (issue 17)
PORT = 9100
COUNT, RATE = 6000, 1000.0  # at most 6 s of traffic; stopped as soon as the new version has counted some


@pytest.fixture(scope="module")
def firewalls(objects, tmp_path_factory):
    """{"old": the previous release's firewall, "new": this one's}, compiled here."""
    tmp = tmp_path_factory.mktemp("release")
    archive = tmp / "old.tar"
    subprocess.run(["git", "-C", REPO, "archive", "-o", str(archive), PREVIOUS_RELEASE, "files/bpf"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp)
    old = bpfcc.compile_source(str(tmp / "files" / "bpf" / "firewall.bpf.c"),
                               [str(tmp / "files" / "bpf" / "include")], {})["path"]
    new = objects["build"](os.path.join(REPO, "files", "bpf", "firewall.bpf.c"))
    return {"old": old, "new": new}


def hits(dut, map_name="deny_v4"):
    """The deny list's hit counts, summed over entries and CPUs (0 when it is not pinned)."""
    path = os.path.join(dut.pin_root, "firewall", "maps", map_name)
    if not os.path.exists(path):
        return 0
    with maps.PinnedMap(path) as m:
        return sum(maps.percpu_sum(v, m.stride) for v in m.dump().values())


def map_id(dut, map_name="deny_v4"):
    with maps.PinnedMap(os.path.join(dut.pin_root, "firewall", "maps", map_name)) as m:
        return m.info["id"], m.type, m.max_entries


def wait_for(condition, what, limit=20.0):
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit, "gave up waiting for %s" % what
        time.sleep(0.01)


def under_traffic(dut, change):
    """Run change() while the denied peer sends to the dut; (datagrams received, change's answer)."""
    sock = dut.receiver(PORT)
    sender = dut.start_sender(PORT, COUNT, RATE)
    try:
        before = hits(dut)
        wait_for(lambda: hits(dut) > before, "the live deny list to count the sender")
        answer = change()
        after = hits(dut)  # the new version's list (a copy's counts start where the copy left them)

        def spanned():  # the new version counted the sender, or let a datagram through
            return hits(dut) > after or leaked(sock)
        wait_for(lambda: spanned() or sender.poll() is not None, "the new version to meet the sender")
        assert spanned(), "the sender stopped before the new version went live: traffic must span the swap"
        sender.terminate()
        sender.wait(timeout=10)
        return dut.drain(sock), answer
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(timeout=10)
        sock.close()


def leaked(sock):
    """Whether a datagram waits at the receiver (left there for drain() to count)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False


def deploy(dut, obj, fill=True, **kw):
    with netns(dut.dut):
        request = dut.request("firewall", obj, **kw)
        return carry.deploy(request) if fill else hooks.deploy(request)


def deny_peer(dut):
    with netns(dut.dut):
        mapsync.sync(os.path.join(dut.pin_root, "firewall", "maps", "deny_v4"), entries=[dut.peer_ip],
                     key_type="ipv4", exclusive=True, state_dir=dut.state_dir)
    assert dut.udp(PORT, 5) == 0


def test_upgrade_from_the_previous_release_changes_the_map_type_and_leaks_nothing(dut, firewalls):
    dut.objects.update(firewalls)
    deploy(dut, "old")
    deny_peer(dut)
    _id, old_type, _max = map_id(dut)
    assert old_type == maps.HASH

    received, result = under_traffic(dut, lambda: deploy(dut, "new"))
    assert received == 0
    assert "deny_v4" in result["maps_recreated"]
    assert result["maps_filled"]["deny_v4"] == {"from": "previous", "entries": 1}
    assert map_id(dut)[1] == maps.PERCPU_HASH
    assert not deploy(dut, "new")["changed"]  # idempotent: the new version with its filled maps is current


def test_control_the_old_path_recreates_the_map_empty_and_the_receiver_sees_leaks(dut, firewalls):
    dut.objects.update(firewalls)
    deploy(dut, "old")
    deny_peer(dut)
    received, result = under_traffic(dut, lambda: deploy(dut, "new", fill=False))
    assert "deny_v4" in result["maps_recreated"] and "maps_filled" not in result
    assert received > 0


def test_capacity_change_keeps_every_entry_and_is_previewed(dut, firewalls):
    dut.objects.update(firewalls)
    deploy(dut, "new")
    deny_peer(dut)
    old_id, _type, old_max = map_id(dut)

    with netns(dut.dut):
        preview = carry.deploy(dut.request("firewall", "new", map_sizes={"deny_v4": old_max * 2}), True)
    assert preview["changed"] and preview["map_sizes"] == {"deny_v4": {"before": old_max, "after": old_max * 2}}
    assert preview["diff"]["after"]["max_entries"] == {"deny_v4": old_max * 2}
    assert preview["maps_filled"] == {"deny_v4": {"from": "previous", "entries": 1}}
    assert map_id(dut)[0] == old_id  # the preview changed nothing

    received, result = under_traffic(dut, lambda: deploy(dut, "new", map_sizes={"deny_v4": old_max * 2}))
    assert received == 0
    new_id, _type, new_max = map_id(dut)
    assert new_id != old_id and new_max == old_max * 2
    assert result["maps_filled"]["deny_v4"]["entries"] == 1
    assert not deploy(dut, "new", map_sizes={"deny_v4": old_max * 2})["changed"]


def test_too_small_a_capacity_and_one_the_kernel_refuses_change_nothing(dut, firewalls):
    dut.objects.update(firewalls)
    deploy(dut, "new")
    with netns(dut.dut):
        mapsync.sync(os.path.join(dut.pin_root, "firewall", "maps", "deny_v4"),
                     entries=["198.18.0.%d" % i for i in range(1, 11)], key_type="ipv4", exclusive=True)
    before = map_id(dut)
    with pytest.raises(Exception) as small:
        deploy(dut, "new", map_sizes={"deny_v4": 4})
    assert "map deny_v4 would hold 10 entries" in str(small.value) and "max_entries is 4" in str(small.value)
    with pytest.raises(Exception) as huge:
        deploy(dut, "new", map_sizes={"deny_v4": 1 << 31 - 1})
    assert "refused to create map deny_v4 with max_entries" in str(huge.value)
    assert map_id(dut) == before


def test_rollback_to_a_checkpoint_with_another_capacity_leaks_nothing(dut, firewalls):
    dut.objects.update(firewalls)
    deploy(dut, "new")
    deny_peer(dut)
    _id, _type, old_max = map_id(dut)
    checkpoint.begin(dut.state_dir)
    deploy(dut, "new", map_sizes={"deny_v4": old_max * 2})
    checkpoint.commit(dut.state_dir)
    assert map_id(dut)[2] == old_max * 2

    def roll_back():
        with netns(dut.dut):
            return checkpoint.rollback("previous", dut.bpffs, dut.state_dir)
    received, result = under_traffic(dut, roll_back)
    assert received == 0
    assert result["changed"] and map_id(dut)[2] == old_max
