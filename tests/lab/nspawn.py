# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The booting lab: hosts that boot a real systemd as PID 1 (systemd-nspawn), reached as a user reaches a fleet.

    nspawn.py up N [--dir D] [--release bookworm]   boot N hosts (and a traffic peer), write D/inventory.ini
    nspawn.py down [--dir D]                        power them off and remove everything the lab made
    nspawn.py reboot HOST [--dir D]                 `systemctl reboot` on HOST, back when sshd answers again
    nspawn.py status [--dir D]                      what the lab in D is made of

Which lab a test uses (see also tests/lab/README.md): this one for everything a host does on its own
(systemd units, timers, the boot restore, packages, reboots, lockouts, become, the collection installed
from its tarball); lab.py's namespace-only hosts for datapath behaviour through Ansible, where their speed
counts and nothing on the host side is involved.

Each host is `systemd-nspawn -b` of its own root filesystem: an overlay whose lower layer is the cached
Debian image (image.py: systemd, sshd, /usr/bin/python3, sudo, user `ops`; no pyroute2, no libbpf) and
whose upper layer is the host's disk D/disk/HOST/upper, kept across reboots. The host joins its own
network namespace (eth0 on the lab's bridge, a monitoring veth pair mon0/mon0p for the mirror role), runs
with all capabilities and the bpf/perf_event_open system calls allowed, and its systemd mounts its own
bpffs. Ansible connects as `ops` with `become` and the distro's /usr/bin/python3. The packages the `host`
role installs come from an apt repository the lab serves on its bridge (a tiny HTTP server in this
machine's namespace bound to the controller's address), the only apt source of the hosts.

A supervisor process per host (`nspawn.py supervise`) runs nspawn; when the container ends with exit
status 133 (`systemctl reboot` inside) it recreates the host's devices (new ifindexes, nothing attached:
what a power cycle leaves) and boots it again, counting boots in D/boots_HOST. Console output goes to
D/console_HOST.log. Names carry a random suffix; addresses come from 198.18.0.0/15.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import image  # noqa: E402
from lab import Lab, _alive, nsexec, sh  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DIR = os.path.join(REPO, "build", "lab-boot")  # build/: ignored by git and by the tarball
USER = image.USER
REPO_PORT = 8080
BOOT_TIMEOUT = 180  # seconds from nspawn's start to sshd answering, on a loaded machine
REBOOT_EXIT = 133  # systemd-nspawn's exit status when the container asked for a reboot


class BootLab(Lab):
    """A lab of booting hosts; the same description (hosts, peer, inventory) as lab.Lab."""

    def __init__(self, directory=DEFAULT_DIR):
        super().__init__(directory)

    # ---- up -----------------------------------------------------------
    def up(self, count, python=None, release="bookworm"):  # python: unused, the hosts run their own /usr/bin/python3
        if self.meta:
            raise SystemExit("a lab is already up in %s; run `nspawn.py down` first" % self.dir)
        if shutil.which("systemd-nspawn") is None:
            raise SystemExit("the booting lab needs systemd-nspawn: apt-get install systemd-container")
        base = image.build(release)
        os.makedirs(self.dir, exist_ok=True)
        suffix = "%04x" % random.randrange(1 << 16)
        addresses = sh(["ip", "-br", "addr"], check=False).stdout
        used = set(re.findall(r"198\.18\.(\d+)\.", addresses))
        net = random.choice([n for n in range(256) if str(n) not in used])
        prefix = "wsb%s" % suffix
        self.meta = {
            "kind": "nspawn", "release": release, "image": base,
            "prefix": prefix, "bridge": prefix + "br", "subnet": "198.18.%d" % net,
            "controller": "198.18.%d.1" % net, "hosts": [], "pids": [],
            "peer": {"ns": prefix + "-peer", "ip": "198.18.%d.200" % net, "ip2": "198.18.%d.201" % net,
                     "veth": prefix + "pr"},
        }
        self._save()
        try:
            self._keys()
            sh(["ip", "link", "add", self.meta["bridge"], "type", "bridge"])
            sh(["ip", "addr", "add", self.meta["controller"] + "/24", "dev", self.meta["bridge"]])
            sh(["ip", "link", "set", self.meta["bridge"], "up"])
            self._namespace(self.meta["peer"]["ns"], self.meta["peer"]["veth"], self.meta["peer"]["ip"])
            nsexec(self.meta["peer"]["ns"], "ip addr add %s/24 dev eth0" % self.meta["peer"]["ip2"])
            self._serve_repo()
            for i in range(1, count + 1):
                host = {"name": "lab%d" % i, "ns": "%s-h%d" % (prefix, i), "veth": "%sh%d" % (prefix, i),
                        "ip": "198.18.%d.%d" % (net, 10 + i), "machine": "%s-lab%d" % (prefix, i),
                        # a NIC keeps its MAC across power cycles (and the controller's ARP entry stays right)
                        "mac": "02:%02x:%02x:%02x:%02x:%02x" % tuple(random.randrange(256) for _byte in range(5))}
                self.meta["hosts"].append(host)
                self._save()
                self._disk(host)
                self._start(host)
            self._inventory()
            for host in self.hosts:
                self.wait_boot(host, 1)
        except BaseException:
            self.down()
            raise
        return self

    def _serve_repo(self):
        """The hosts' apt mirror: a static HTTP server on the controller's address, serving the image's repo/."""
        repo = os.path.join(self.meta["image"], "repo")
        log = open(os.path.join(self.dir, "repo_http.log"), "a")  # noqa: SIM115 - the server's own log
        proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", self.meta["controller"],
                                 "--directory", repo, str(REPO_PORT)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.meta["pids"].append(proc.pid)
        self._save()
        deadline = time.monotonic() + 30
        while True:  # until it accepts a connection (or died)
            try:
                socket.create_connection((self.meta["controller"], REPO_PORT), timeout=1).close()
                return
            except OSError:
                if not _alive(proc.pid) or time.monotonic() > deadline:
                    raise RuntimeError("the lab's apt repository server did not start: see %s/repo_http.log"
                                       % self.dir) from None
                time.sleep(0.05)

    def disk(self, host):
        """The host's disk: the overlay's upper layer (its whole root filesystem's changes), kept across reboots."""
        return os.path.join(self.dir, "disk", host["name"], "upper")

    def root(self, host):
        return os.path.join(self.dir, "root", host["name"])

    def _disk(self, host):
        """The host's upper layer, seeded with what is this host's own: name, machine id, the controller's key,
        the apt source on the bridge. Then the overlay mounted as its root."""
        upper, work = self.disk(host), os.path.join(self.dir, "disk", host["name"], "work")
        lower = os.path.join(self.meta["image"], "rootfs")
        for d in (upper, work, self.root(host)):
            os.makedirs(d, exist_ok=True)
        uid, gid = _ids(lower, USER)
        ssh_dir = os.path.join(upper, "home", USER, ".ssh")
        os.makedirs(ssh_dir, mode=0o700)
        os.makedirs(os.path.join(upper, "etc", "apt", "sources.list.d"))
        with open(os.path.join(ssh_dir, "authorized_keys"), "w") as fh, \
                open(os.path.join(self.dir, "id_ed25519.pub")) as pub:
            fh.write(pub.read())
        for path in (os.path.join(upper, "home", USER), ssh_dir, os.path.join(ssh_dir, "authorized_keys")):
            os.chown(path, uid, gid)
        os.chmod(os.path.join(upper, "home", USER), 0o755)
        _write(os.path.join(upper, "etc", "hostname"), host["name"] + "\n")
        _write(os.path.join(upper, "etc", "hosts"), "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n" % host["name"])
        _write(os.path.join(upper, "etc", "machine-id"), uuid.uuid4().hex + "\n")
        _write(os.path.join(upper, "etc", "apt", "sources.list.d", "lab.list"),
               "deb [trusted=yes] http://%s:%d/ ./\n" % (self.meta["controller"], REPO_PORT))
        # a container loads no kernel modules (this machine's kernel has what the lab needs): without this, hosts
        # whose packages ship a modules-load.d file (trixie's) would boot with a failed unit
        os.makedirs(os.path.join(upper, "etc", "systemd", "system"), exist_ok=True)
        os.symlink("/dev/null", os.path.join(upper, "etc", "systemd", "system", "systemd-modules-load.service"))
        sh(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work),
            self.root(host)])

    def devices(self, host):
        """(Re)create the host's devices: what its hardware is at power-on. Every device of its network namespace
        but lo is replaced by a new one (made before the old ones go, so the kernel gives it another ifindex), so
        nothing is attached to them; eth0 keeps its MAC, as a NIC does."""
        if not os.path.exists("/run/netns/" + host["ns"]):
            sh(["ip", "netns", "add", host["ns"]])
        links = sh(["ip", "-n", host["ns"], "-o", "link", "show"]).stdout
        old = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if ":" in line]
        sh(["ip", "link", "add", host["veth"] + "n", "type", "veth", "peer", "name", host["veth"] + "x"])
        sh(["ip", "link", "set", host["veth"] + "x", "netns", host["ns"]])
        nsexec(host["ns"], "ip link add mon0n type veth peer name mon0pn")
        for dev in old:
            if dev != "lo":
                sh(["ip", "-n", host["ns"], "link", "del", dev], check=False)
        sh(["ip", "link", "del", host["veth"]], check=False)  # gone with the old eth0, unless there was none
        sh(["ip", "link", "set", host["veth"] + "n", "name", host["veth"]])
        nsexec(host["ns"], "ip link set %sx name eth0 && ip link set eth0 address %s && ip addr add %s/24 dev eth0 "
                           "&& ip link set eth0 up && ip link set lo up && ip link set mon0n name mon0 "
                           "&& ip link set mon0pn name mon0p && ip link set mon0 up && ip link set mon0p up"
                           % (host["veth"], host["mac"], host["ip"]))
        sh(["ip", "link", "set", host["veth"], "master", self.meta["bridge"]])
        sh(["ip", "link", "set", host["veth"], "up"])
        sh(["ip", "neigh", "flush", "to", host["ip"], "dev", self.meta["bridge"]], check=False)

    def bpffs(self, host):
        return os.path.join(self.dir, "bpffs", host["name"])

    def fresh_bpffs(self, host):
        """A new, empty BPF filesystem for the host's next boot (its old one unmounted: pins gone, as at power-off).
        On a machine, the host's systemd mounts /sys/fs/bpf before any unit runs; systemd in a container does
        not, so the lab mounts one here and nspawn binds it there before the host's systemd starts."""
        path = self.bpffs(host)
        os.makedirs(path, exist_ok=True)
        while subprocess.run(["mountpoint", "-q", path], check=False).returncode == 0:
            sh(["umount", path])
        sh(["mount", "-t", "bpf", "-o", "mode=700", "bpf", path])
        return path

    def _start(self, host):
        """Start the host's supervisor, which boots it (and boots it again after each reboot)."""
        with open(os.path.join(self.dir, "supervise_%s.log" % host["name"]), "a") as log:
            proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "supervise", host["name"],
                                     "--dir", self.dir], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        host["pid"] = proc.pid
        self._save()

    def _inventory(self):
        key = os.path.join(self.dir, "id_ed25519")
        lines = ["[lab]"]
        for h in self.hosts:
            lines.append("%s ansible_host=%s lab_ns=%s" % (h["name"], h["ip"], h["ns"]))
        lines += [
            "", "[lab:vars]", "ansible_user=%s" % USER, "ansible_become=true",
            "ansible_python_interpreter=/usr/bin/python3", "ansible_ssh_private_key_file=%s" % key,
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            "-o LogLevel=ERROR -o ControlMaster=auto -o ControlPersist=60s -o ControlPath=%s/cp-%%r@%%h "
            "-o ServerAliveInterval=2 -o ServerAliveCountMax=3'" % self.dir,
            "ansible_pipelining=true",
            "lab_controller_ip=%s" % self.meta["controller"],
            "lab_peer_ns=%s" % self.peer["ns"], "lab_peer_ip=%s" % self.peer["ip"], "",
        ]
        with open(self.inventory, "w") as fh:
            fh.write("\n".join(lines))

    # ---- boots --------------------------------------------------------
    def boots(self, host):
        """How many times the host has booted (the supervisor counts each nspawn start)."""
        try:
            with open(os.path.join(self.dir, "boots_%s" % host["name"])) as fh:
                return int(fh.read().strip() or 0)
        except FileNotFoundError:
            return 0

    def wait_boot(self, host, boot, timeout=BOOT_TIMEOUT):
        """Wait until the host's boot number `boot` has started and its sshd lets `ops` in."""
        deadline = time.monotonic() + timeout
        probe = None
        while True:
            if self.boots(host) >= boot:
                probe = self.ssh(host, "true", timeout=10, sudo=False)
                if probe.returncode == 0:
                    return
            if not _alive(host.get("pid")):
                raise RuntimeError("lab host %s: its supervisor ended (see %s)" % (host["name"], self.console(host)))
            if time.monotonic() > deadline:
                raise RuntimeError("lab host %s: boot %d did not let ssh in within %d s (%s); console: %s"
                                   % (host["name"], boot, timeout, probe and probe.stderr.strip(),
                                      self.console_text(host)[-2000:]))
            time.sleep(0.2)

    def console(self, host):
        return os.path.join(self.dir, "console_%s.log" % host["name"])

    def console_text(self, host):
        try:
            with open(self.console(host), errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def reboot(self, name, how="systemctl reboot"):
        """Reboot a host from inside (`systemctl reboot`, or `how`), and wait until it lets ssh in again."""
        host = self.host(name) if isinstance(name, str) else name
        boot = self.boots(host)
        self._close_master(host)
        self.ssh(host, "(sleep 0.5; %s) >/dev/null 2>&1 </dev/null &" % how, timeout=30)
        self.wait_boot(host, boot + 1)
        return host

    # ---- helpers for tests ----------------------------------------------
    def ssh(self, host, command, timeout=60, sudo=True):
        """Run a shell command on a host as root (ops and sudo, as the controller's Ansible does)."""
        remote = "sudo -n sh -c %s" % _quote(command) if sudo else command
        try:
            return subprocess.run(
                ["ssh", "-i", os.path.join(self.dir, "id_ed25519"), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
                 "%s@%s" % (USER, host["ip"]), remote],
                capture_output=True, stdin=subprocess.DEVNULL, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 255, "", "ssh timed out after %s s" % timeout)

    def leader(self, host):
        """The PID (in this machine's namespace) of the host's systemd, or None."""
        for pid in _container_pids(self.root(host)):
            try:
                with open("/proc/%d/status" % pid) as fh:
                    if re.search(r"^NSpid:\s+\d+\s+1$", fh.read(), re.M):
                        return pid
            except OSError:
                pass
        return None

    # ---- down ---------------------------------------------------------
    def down(self):
        if not self.meta:
            return
        for h in self.hosts:
            self._close_master(h)
            if _alive(h.get("pid")):
                os.kill(h["pid"], signal.SIGTERM)  # the supervisor powers its host off and ends
        for h in self.hosts:
            _wait_gone(h.get("pid"), 60)
            if _alive(h.get("pid")):
                os.kill(h["pid"], signal.SIGKILL)
            for pid in _container_pids(self.root(h)):  # a container its supervisor could not end
                _kill(pid)
            subprocess.run(["umount", "-l", self.root(h)], capture_output=True, check=False)
            subprocess.run(["umount", "-l", self.bpffs(h)], capture_output=True, check=False)
            shutil.rmtree("/run/systemd/nspawn/propagate/" + h["machine"], ignore_errors=True)  # nspawn's, for --bind
        for pid in self.meta.get("pids", []):
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
                _wait_gone(pid, 10)
        for ns in [h["ns"] for h in self.hosts] + [self.meta["peer"]["ns"]]:
            sh(["ip", "netns", "del", ns], check=False)
        for veth in [h["veth"] for h in self.hosts] + [self.meta["peer"]["veth"], self.meta["bridge"]]:
            sh(["ip", "link", "del", veth], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.meta = None


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def _ids(rootfs, user):
    with open(os.path.join(rootfs, "etc", "passwd")) as fh:
        for line in fh:
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
    raise RuntimeError("the lab image %s has no user %s" % (rootfs, user))


def _container_pids(root):
    """Processes whose root directory is the host's root: the container's, seen from this machine."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink("/proc/%s/root" % entry) == root:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


# ---- the supervisor: `nspawn.py supervise HOST --dir D`, one per host, started by `up` ----
def supervise(directory, name):
    lab = BootLab(directory)
    host = lab.host(name)
    stop = {"requested": False, "child": None}

    def on_term(_signum, _frame):
        stop["requested"] = True
        if stop["child"] and stop["child"].poll() is None:
            stop["child"].send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off

    signal.signal(signal.SIGTERM, on_term)
    boots = 0
    while not stop["requested"]:
        lab.devices(host)
        bpffs = lab.fresh_bpffs(host)
        boots += 1
        with open(os.path.join(directory, "boots_%s" % name), "w") as fh:
            fh.write("%d\n" % boots)
        # nspawn runs inside the host's namespace (nsenter --net), not only joins it: it mounts the container's
        # /sys before joining, and from this machine's namespace that /sys shows this machine's NICs
        cmd = ["nsenter", "--net=/run/netns/" + host["ns"], "systemd-nspawn", "--quiet", "--register=no",
               "--keep-unit", "--link-journal=no", "--boot",
               "--directory", lab.root(host), "--machine", host["machine"], "--hostname", name,
               "--network-namespace-path", "/run/netns/" + host["ns"], "--capability=all",
               "--system-call-filter=bpf perf_event_open", "--resolv-conf=off", "--timezone=off",
               "--bind=%s:/sys/fs/bpf" % bpffs,
               "--console=read-only"]
        with open(lab.console(host), "a") as console:
            console.write("\n== boot %d (%s)\n" % (boots, time.strftime("%Y-%m-%dT%H:%M:%S")))
            console.flush()
            stop["child"] = subprocess.Popen(cmd, stdout=console, stderr=console, stdin=subprocess.DEVNULL)
            status = stop["child"].wait()
            console.write("\n== nspawn exited with status %d\n" % status)
        if status != REBOOT_EXIT:
            break


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status", "reboot", "supervise"])
    parser.add_argument("target", nargs="?", default=None, help="up: how many hosts (2); reboot: which host")
    parser.add_argument("--dir", default=DEFAULT_DIR)
    parser.add_argument("--release", default="bookworm", choices=image.RELEASES)
    args = parser.parse_args(argv)
    if args.action == "supervise":
        supervise(os.path.abspath(args.dir), args.target)
        return
    lab = BootLab(args.dir)
    if args.action == "up":
        started = time.monotonic()
        lab.up(int(args.target or 2), release=args.release)
        print("lab up: %d booting hosts (%s) in %.1f s, inventory %s"
              % (len(lab.hosts), args.release, time.monotonic() - started, lab.inventory))
    elif args.action == "reboot":
        try:
            host = lab.host(args.target)
        except StopIteration:
            raise SystemExit("no host %r in the lab in %s" % (args.target, lab.dir)) from None
        started = time.monotonic()
        lab.reboot(host)
        print("lab host %s rebooted in %.1f s (boot %d)" % (host["name"], time.monotonic() - started, lab.boots(host)))
    elif args.action == "down":
        lab.down()
        print("lab down")
    else:
        print(json.dumps(lab.meta, indent=1) if lab.meta else "no lab in %s" % args.dir)


if __name__ == "__main__":
    main()
