# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalogue of faults, each through ansible-playbook against a lab host running a datapath, with its
expected outcome asserted: a state directory that is read-only or full, a foreign XDP program, an interface
deleted and re-created, pins and the whole bpffs lost, two runs at once, the module killed in the middle of a
large map sync and of a chain change. The faults of the host itself (the controller losing SSH in the middle of
a run, a host that reboots) run on hosts that boot systemd: test_host_faults.py."""

import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import snapshot  # noqa: E402
from datapaths import ROLE, ZOO, baseline, write  # noqa: E402
from labplay import BIN, REPO, LabNet, assert_once, failure, playbook, running_lab  # noqa: E402

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program import compile as bpfcc  # noqa: E402

DROP_ALL = os.path.join(os.path.dirname(HERE), "integration", "bpf", "drop_all.bpf.c")
DROP_PORT = os.path.join(REPO, "files", "bpf", "examples", "drop_port.bpf.c")  # hands packets on along the chain
STATE = "/var/lib/wirespeed"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "faults", 1) as fleet:
        baseline(fleet)
        yield fleet


@pytest.fixture
def host(lab):
    """The lab host at the baseline datapath, put back to it after each fault unless the test ended by proving it
    is still there: a snapshot equal to the one taken at the baseline (snapshot.changed == {}), or a baseline() of
    its own as its last change. A test that fails never proves it, so a failure is always followed by baseline()."""
    lab.at_baseline = False
    yield lab.hosts[0]
    if not lab.at_baseline:
        baseline(lab)


def proven_at_baseline(lab):
    """The test's last statement when it has shown the host at the baseline: the fixture then skips baseline()."""
    lab.at_baseline = True


def sh(lab, host, command):
    out = lab.ssh(host, command)
    assert out.returncode == 0, (command, out.stdout, out.stderr)
    return out.stdout


def chain(lab, host):
    """(program names in chain order, XDP prog id on eth0) read with the kernel's own tools."""
    out = playbook(lab, write(lab, "read", [{"wirespeed.datapath.datapath_info": {"interfaces": ["eth0"]}}]))
    eth0 = out["Step 1"][host["name"]]["datapath"]["eth0"]
    return [e["name"] for e in eth0["chain"]], (eth0["xdp_prog"] or {}).get("id")


def test_a_read_only_state_directory_is_refused_before_the_kernel_is_touched(lab, host):
    before = snapshot.before(lab, host)
    sh(lab, host, "mount -o remount,bind,ro %s" % STATE)
    try:
        out = playbook(lab, write(lab, "ro", [{"wirespeed.datapath.xdp_map_entry": {
            "interface": "eth0", "name": "zoo", "map": "hash_v4", "key_type": "ipv4", "entries": ["192.0.2.9"]}}]))
    finally:
        sh(lab, host, "mount -o remount,bind,rw %s" % STATE)
    assert out["rc"] != 0
    assert_once(re.escape(STATE), failure(out))
    assert snapshot.changed(lab, host, before) == {}
    proven_at_baseline(lab)


def test_a_full_state_directory_is_refused_before_the_kernel_is_touched(lab, host):
    before = snapshot.before(lab, host)
    full = "/run/wsfull"
    sh(lab, host, "mkdir -p %s && mount -t tmpfs -o size=64k tmpfs %s && "
                  "(dd if=/dev/zero of=%s/fill bs=4k count=64 2>/dev/null || true)" % (full, full, full))
    try:
        out = playbook(lab, write(lab, "full", [{"wirespeed.datapath.xdp_program": {
            "interface": "eth0", "name": "dropper", "src": DROP_PORT, "priority": 5, "config": {"drop_port": 7009},
            "state_dir": full}}]))
    finally:
        sh(lab, host, "umount %s && rmdir %s" % (full, full))
    assert out["rc"] != 0
    assert_once(re.escape(full), failure(out))
    assert snapshot.changed(lab, host, before) == {}  # no dropper pinned, loaded or attached
    proven_at_baseline(lab)


def test_a_foreign_xdp_program_is_reported_and_never_clobbered_without_force(lab, host):
    obj = bpfcc.compile_source(DROP_ALL, cache_dir=lab.dir)["path"]
    sh(lab, host, "ip link set dev mon0 xdpgeneric obj %s sec xdp" % obj)
    try:
        foreign = re.search(r"prog/xdp id (\d+)", sh(lab, host, "ip -d link show mon0")).group(1)
        before = snapshot.before(lab, host)
        out = playbook(lab, write(lab, "foreign", [{"wirespeed.datapath.xdp_program": {
            "interface": "mon0", "name": "zoo", "src": ZOO, "mode": "generic"}}]))
        assert out["rc"] != 0
        message = failure(out)
        assert_once(r"mon0", message)
        assert "force" in message and foreign in message
        assert snapshot.changed(lab, host, before) == {}
    finally:
        sh(lab, host, "ip link set dev mon0 xdpgeneric off")
    proven_at_baseline(lab)  # the snapshot showed nothing changed; the foreign program is gone again


def test_an_interface_deleted_between_runs_is_named_and_gets_the_datapath_when_it_is_back(lab, host):
    sh(lab, host, "ip link add wsf0 type veth peer name wsf0p && ip link set wsf0 up && ip link set wsf0p up")
    book = write(lab, "wsf0", [{"wirespeed.datapath.xdp_program": {
        "interface": "wsf0", "name": "zoo", "src": ZOO, "priority": 60}}])
    try:
        assert playbook(lab, book)["rc"] == 0
        sh(lab, host, "ip link del wsf0")
        gone = playbook(lab, book)
        assert gone["rc"] != 0
        assert_once(r"wsf0", failure(gone))
        sh(lab, host, "ip link add wsf0 type veth peer name wsf0p && ip link set wsf0 up && ip link set wsf0p up")
        back = playbook(lab, book)
        assert back["rc"] == 0 and back["Step 1"][host["name"]]["changed"]
        assert "prog/xdp" in sh(lab, host, "ip -d link show wsf0")
        again = playbook(lab, book)
        assert again["rc"] == 0 and not again["Step 1"][host["name"]]["changed"]
    finally:
        lab.ssh(host, "ip link del wsf0")
        lab.ssh(host, "rm -rf /sys/fs/bpf/wirespeed/wsf0")


def test_pins_deleted_by_hand_are_repaired_and_reported_as_a_change(lab, host):
    names, _root = chain(lab, host)
    sh(lab, host, "rm -rf /sys/fs/bpf/wirespeed/eth0/zoo")
    out = baseline(lab)
    assert out["Step 1"][host["name"]]["changed"]
    assert chain(lab, host)[0] == names  # one zoo, in its place, not an orphan beside a new copy
    assert "192.0.2.1" in sh(lab, host, "bpftool map dump pinned /sys/fs/bpf/wirespeed/eth0/zoo/maps/hash_v4 "
                                        "| python3 -c 'import sys,json,socket,struct; "
                                        "print([socket.inet_ntoa(struct.pack(\"<I\", e[\"key\"])) "
                                        "for e in json.load(sys.stdin)])'")
    proven_at_baseline(lab)  # baseline() was its last change, and it succeeded


def test_a_lost_bpffs_is_detected_and_repaired(lab, host):
    names, root = chain(lab, host)
    sh(lab, host, "umount /sys/fs/bpf")  # every pin gone at once; the programs stay attached in the kernel
    out = baseline(lab)
    assert out["rc"] == 0 and out["Step 1"][host["name"]]["changed"]
    assert sh(lab, host, "mount | grep -c ' /sys/fs/bpf type bpf'").strip() == "1"
    after, _new_root = chain(lab, host)
    assert sorted(after) == sorted(names)
    net = LabNet(lab, host)
    assert net.udp(7001, 10) == 0 and net.udp(7000, 10) == 10  # the firewall's port rule works again
    assert root is not None
    proven_at_baseline(lab)  # baseline() was its last change, and it succeeded


def test_two_runs_at_once_are_serialised_and_both_end_consistent(lab, host):
    a = ["192.0.2.%d" % i for i in range(1, 6)]
    b = ["198.51.100.%d" % i for i in range(1, 4)]
    procs = []
    for deny in (a, b):
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, ROLE, "-e",
               json.dumps({"role_under_test": "firewall", "firewall_interfaces": ["eth0"], "firewall_deny": deny})]
        procs.append(_popen(cmd))
    outs = [p.wait(300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    dump = sh(lab, host, "bpftool -j map dump pinned /sys/fs/bpf/wirespeed/eth0/firewall/maps/deny_v4")
    # the key as bpftool formats it from BTF: the address (an integer in host order), or the struct around it
    keys = [e.get("formatted", e)["key"] for e in json.loads(dump)]
    got = sorted(socket.inet_ntoa(struct.pack("<I", k["addr"] if isinstance(k, dict) else int(k))) for k in keys)
    assert got in (sorted(a), sorted(b)), got  # one run's list whole, never a mix or a stale restore


def _kill_module_when_running(lab, host, module, delay, run):
    """SIGKILL the module's process on the host once it has run for `delay` seconds; whether a kill landed. The
    watch runs on the host itself (a poll every 10 ms), so ssh round trips do not make the kill land after a short
    module has ended. It waits on the event, not on a guess of how long the run takes to reach the module: it ends
    when it has killed, or when the run has ended without the module (then the test stops it)."""
    script = ('echo watch $$; me=$(readlink /proc/self/ns/net); end=$(( $(date +%%s) + 900 )); '
              'while [ $(date +%%s) -lt $end ]; do pids=$(%s); '
              'if [ -n "$pids" ]; then sleep %s; kill -9 $pids 2>/dev/null; echo killed; exit 0; fi; sleep 0.01; done'
              % (_pids_script(module), delay))
    watch = subprocess.Popen(lab.ssh_argv(host, script), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    started = watch.stdout.readline().split()  # ['watch', <its PID on the host>]
    try:
        run.wait(900)
        out = watch.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:  # the run ended and the module never showed: stop the watch on the host too
        watch.kill()
        out = watch.communicate()[0]
        if started[:1] == ["watch"]:
            lab.ssh(host, "kill %d 2>/dev/null; true" % int(started[1]))
    return "killed" in out


def _module_pids(lab, host, module):
    """The PIDs of the module's processes on this lab host only. The lab shares the machine's PID namespace: a
    plain pgrep would also find another test's module run, and the local ssh client whose command line carries
    the pattern (which once made these fault tests kill only their own ssh client, never the module)."""
    return lab.ssh(host, "me=$(readlink /proc/self/ns/net); " + _pids_script(module)).stdout.split()


def _pids_script(module):
    """Shell that prints the PIDs of the python running AnsiballZ_<module>.py (and its sh -c parent) in the network
    namespace whose id is in $me; not the chmod that readies the file before it runs."""
    pattern = "python.* /.*AnsiballZ_[%s]%s[.]py" % (module[0], module[1:])  # brackets: not this shell itself
    return ('for p in $(pgrep -f "%s"); do [ "$(readlink /proc/$p/ns/net 2>/dev/null)" = "$me" ] && echo $p; done'
            % pattern)


class _Run:
    """ansible-playbook started in the background against the lab. Without pipelining, so that the module's process
    on the host carries its name (AnsiballZ_<module>.py) for _module_pids to find. A thread drains its output as it
    comes, so a long run never blocks on a full pipe while a test waits for an event on the host."""

    def __init__(self, argv, **env):
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False",
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"), **env)
        self.proc = subprocess.Popen(argv + ["-e", "ansible_pipelining=false"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def returncode(self):
        return self.proc.returncode

    def poll(self):
        return self.proc.poll()

    def wait(self, timeout):
        """Its whole output, once it has ended."""
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=timeout)
        return "".join(self.lines)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _popen(argv, **env):
    return _Run(argv, **env)


def _background(lab, book):
    return _popen([os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, book])


def test_a_module_killed_in_a_100k_sync_leaves_a_working_chain_and_the_next_run_converges(lab, host):
    entries = ["10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(100000)]
    book = write(lab, "big", [{"wirespeed.datapath.xdp_map_entry": {
        "interface": "eth0", "name": "firewall", "map": "deny_v4", "key_type": "ipv4", "entries": entries,
        "exclusive": True}}])
    names, root = chain(lab, host)
    landed = 0
    for delay in (0.1, 0.3, 0.5):  # the module parses its 100k arguments, then syncs; kill it at a few points
        proc = _background(lab, book)
        _kill_module_when_running(lab, host, "bpf_map_entry", delay, proc)  # the module the alias runs
        landed += proc.returncode != 0
        net = LabNet(lab, host)
        assert net.udp(7001, 10) == 0 and net.udp(7000, 10) == 10  # the chain works through the fault
        assert chain(lab, host) == (names, root)
    assert landed  # at least one kill hit the module before it ended
    again = playbook(lab, book)
    assert again["rc"] == 0
    count = sh(lab, host, "bpftool map dump pinned /sys/fs/bpf/wirespeed/eth0/firewall/maps/deny_v4 | grep -c key")
    assert int(count) == 100000
    assert not playbook(lab, book)["Step 1"][host["name"]]["changed"]


def test_a_module_killed_in_a_chain_change_never_leaves_a_half_chain(lab, host):
    names, root = chain(lab, host)
    assert names[-1] == "zoo"  # the baseline's plain program ends the chain; the new one goes before it
    grown = names[:-1] + ["late", "zoo"]
    book = write(lab, "chain", [{"wirespeed.datapath.xdp_program": {
        "interface": "eth0", "name": "late", "src": DROP_PORT, "priority": 55, "config": {"drop_port": 7009}}}])
    landed = 0
    for delay in (0.2, 0.6, 1.2):
        proc = _background(lab, book)
        _kill_module_when_running(lab, host, "xdp_program", delay, proc)
        landed += proc.returncode != 0
        net = LabNet(lab, host)
        assert net.udp(7001, 10) == 0 and net.udp(7000, 10) == 10  # root attached, chain whole, old or new
        now, now_root = chain(lab, host)
        assert now_root == root and now in (names, grown), now
    assert landed  # at least one kill hit the module before it ended
    out = playbook(lab, book)
    assert out["rc"] == 0, out
    assert chain(lab, host)[0] == grown
    remove = write(lab, "unchain", [{"wirespeed.datapath.xdp_program": {
        "interface": "eth0", "name": "late", "src": DROP_PORT, "state": "absent"}}])
    assert playbook(lab, remove)["rc"] == 0
