# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of lab hosts on this one machine, reached by Ansible over SSH.

    lab.py up N [--dir D]     create N hosts (and a traffic peer), write D/inventory.ini
    lab.py down [--dir D]     remove everything the lab in D created
    lab.py status [--dir D]   what the lab in D is made of
    lab.py instances [--dir D]  its hosts as molecule's instance config (JSON)

Each host is a network namespace with its own mount namespace: its own
bpffs at /sys/fs/bpf, its own sshd, its own /var/lib/wirespeed (a bind
mount of D/disk/HOST: the host's disk), an empty ~root/.bashrc (as a stock
host's is for a non-interactive session), and a veth pair mon0/mon0p inside
it as a monitoring port for the mirror. Its `eth0` hangs on a bridge in the
root namespace, which also holds the controller's address; a `peer`
namespace on the same bridge sends traffic. Names carry a random suffix;
addresses come from 198.18.0.0/15 (RFC 2544, benchmarking) so they do not
meet a real network.

These hosts are fast (no boot, the controller's Python, root over SSH) and
share this machine's root filesystem: they are for datapath behaviour
through Ansible. They have no systemd, so nothing here boots, reboots or
runs units; the inventory points the collection's unit directories at the
host's disk so that no unit lands in this machine's /etc. Everything a host
does on its own (units, timers, the boot restore, packages, reboots,
lockouts, become) is tested on the booting lab, tests/lab/nspawn.py (see
tests/lab/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DIR = os.path.join(REPO, ".lab")
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP = "/usr/lib/openssh/sftp-server"
STATE_DIR = "/var/lib/wirespeed"
UNIT_DIR = STATE_DIR + "/systemd"  # unit files land on the host's disk, never in this machine's /etc/systemd


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=check, text=True,
                          capture_output=True, **kw)


def nsexec(ns, cmd, check=True, **kw):
    """Run cmd in namespace ns (network only, so the root bpffs stays visible)."""
    args = ["nsenter", "--net=/run/netns/%s" % ns] + (["sh", "-c", cmd] if isinstance(cmd, str) else cmd)
    return subprocess.run(args, check=check, text=True, capture_output=True, **kw)


class Lab:
    def __init__(self, directory=DEFAULT_DIR):
        self.dir = os.path.abspath(directory)
        self.meta_path = os.path.join(self.dir, "lab.json")
        self.meta = None
        if os.path.exists(self.meta_path):
            with open(self.meta_path) as fh:
                self.meta = json.load(fh)

    # ---- description ------------------------------------------------
    @property
    def inventory(self):
        return os.path.join(self.dir, "inventory.ini")

    @property
    def hosts(self):
        return self.meta["hosts"] if self.meta else []

    @property
    def peer(self):
        return self.meta["peer"]

    def host(self, name):
        return next(h for h in self.hosts if h["name"] == name)

    # ---- up -----------------------------------------------------------
    def up(self, count, python=None):
        if self.meta:
            raise SystemExit("a lab is already up in %s; run `lab.py down` first" % self.dir)
        os.makedirs(self.dir, exist_ok=True)
        suffix = "%04x" % random.randrange(1 << 16)
        addresses = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True, check=False).stdout
        used = set(re.findall(r"198\.18\.(\d+)\.", addresses))
        net = random.choice([n for n in range(256) if str(n) not in used])  # another lab's subnet would shadow ours
        prefix = "wsl%s" % suffix
        self.meta = {
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
            # a second source on the peer: one address to deny, one to let through
            nsexec(self.meta["peer"]["ns"], "ip addr add %s/24 dev eth0" % self.meta["peer"]["ip2"])
            os.makedirs(STATE_DIR, exist_ok=True)
            os.makedirs("/run/sshd", exist_ok=True)
            for i in range(1, count + 1):
                host = {"name": "lab%d" % i, "ns": "%s-h%d" % (prefix, i), "veth": "%sh%d" % (prefix, i),
                        "ip": "198.18.%d.%d" % (net, 10 + i)}
                self.meta["hosts"].append(host)
                self._save()
                self._namespace(host["ns"], host["veth"], host["ip"])
                # a monitoring port for the mirror role: copies sent to mon0 arrive on mon0p
                nsexec(host["ns"], "ip link add mon0 type veth peer name mon0p && ip link set mon0 up "
                                   "&& ip link set mon0p up")
                self._start(host)
            self._inventory(python or sys.executable)
            self._wait_ssh()
        except BaseException:
            self.down()
            raise
        return self

    def _save(self):
        with open(self.meta_path, "w") as fh:
            json.dump(self.meta, fh, indent=1)

    def _keys(self):
        for name in ("id_ed25519", "host_ed25519"):
            path = os.path.join(self.dir, name)
            if not os.path.exists(path):
                sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path])
        shutil.copyfile(os.path.join(self.dir, "id_ed25519.pub"), os.path.join(self.dir, "authorized_keys"))

    def _namespace(self, ns, veth, ip):
        sh(["ip", "netns", "add", ns])
        sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "x"])
        sh(["ip", "link", "set", veth + "x", "netns", ns])
        nsexec(ns, "ip link set %sx name eth0 && ip addr add %s/24 dev eth0 && ip link set eth0 up "
                   "&& ip link set lo up" % (veth, ip))
        sh(["ip", "link", "set", veth, "master", self.meta["bridge"]])
        sh(["ip", "link", "set", veth, "up"])

    def disk(self, host):
        """The directory that is the host's /var/lib/wirespeed: its disk, kept across reboots."""
        return os.path.join(self.dir, "disk", host["name"])

    def _start(self, host):
        """Start a host: a new mount namespace with a fresh bpffs and the host's disk, then sshd in the
        foreground."""
        os.makedirs(self.disk(host), exist_ok=True)
        conf = os.path.join(self.dir, "sshd_%s.conf" % host["name"])
        with open(conf, "w") as fh:
            fh.write("\n".join([
                "ListenAddress %s" % host["ip"], "Port 22",
                "HostKey %s" % os.path.join(self.dir, "host_ed25519"),
                "AuthorizedKeysFile %s" % os.path.join(self.dir, "authorized_keys"),
                "PermitRootLogin prohibit-password", "PasswordAuthentication no", "UsePAM no",
                "StrictModes no", "LogLevel ERROR", "PidFile none",
                "Subsystem sftp %s" % SFTP, "",
            ]))
        q = shlex.quote
        # sshd's sessions run root's shell, and bash reads ~/.bashrc in them: this machine's runs pyenv's init
        # (a rehash under a lock shared by every session) on every command Ansible sends. A stock host's
        # .bashrc does nothing for a non-interactive session, so the host sees an empty one.
        bashrc = os.path.join(os.path.expanduser("~root"), ".bashrc")
        quiet = os.path.join(self.dir, "bashrc")
        open(quiet, "w").close()
        script = ("mount -t bpf bpf /sys/fs/bpf && mount --bind %s %s && %sexec %s -D -e -f %s"
                  % (q(self.disk(host)), STATE_DIR,
                     "mount --bind %s %s && " % (q(quiet), q(bashrc)) if os.path.exists(bashrc) else "",
                     SSHD, q(conf)))
        with open(os.path.join(self.dir, "sshd_%s.log" % host["name"]), "a") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", host["ns"], "unshare", "--mount", "--propagation", "private",
                 "sh", "-c", script], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        host["pid"] = proc.pid
        self._save()
        return proc

    def _inventory(self, python):
        key = os.path.join(self.dir, "id_ed25519")
        lines = ["[lab]"]
        for h in self.hosts:
            lines.append("%s ansible_host=%s lab_ns=%s" % (h["name"], h["ip"], h["ns"]))
        lines += [
            "", "[lab:vars]", "ansible_user=root", "ansible_ssh_private_key_file=%s" % key,
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            "-o LogLevel=ERROR -o ControlMaster=auto -o ControlPersist=60s -o ControlPath=%s/cp-%%h "
            "-o ServerAliveInterval=2 -o ServerAliveCountMax=3'" % self.dir,
            "ansible_python_interpreter=%s" % python, "ansible_pipelining=true",
            "ansible_become=false",  # root already, and no sudo here: the playbooks' `become: true` is not needed
            "host_require_systemd=false",  # these hosts run no systemd; the booting lab (nspawn.py) does
            "lab_controller_ip=%s" % self.meta["controller"],
            "lab_peer_ns=%s" % self.peer["ns"], "lab_peer_ip=%s" % self.peer["ip"],
            "persistence_unit_dir=%s" % UNIT_DIR,
            # the host role's fstab line goes to the host's disk, not to this machine's /etc/fstab
            "host_fstab=%s/fstab" % STATE_DIR, "",
        ]
        with open(self.inventory, "w") as fh:
            fh.write("\n".join(lines))

    def _wait_ssh(self, timeout=20, hosts=None):
        deadline = time.time() + timeout
        for h in hosts or self.hosts:
            while True:
                probe = subprocess.run(
                    ["ssh", "-i", os.path.join(self.dir, "id_ed25519"), "-o", "BatchMode=yes",
                     "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                     "-o", "ConnectTimeout=2", "root@" + h["ip"], "true"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                    check=False)
                if probe.returncode == 0:
                    break
                gone = not _alive(h.get("pid"))
                if gone or time.time() > deadline:
                    with open(os.path.join(self.dir, "sshd_%s.log" % h["name"])) as fh:
                        log = fh.read()
                    raise RuntimeError("lab host %s did not answer on ssh%s: %s %s"
                                       % (h["name"], " (its sshd exited)" if gone else "", probe.stderr, log))
                time.sleep(0.2)

    # ---- helpers for tests and the demo --------------------------------
    def ssh_argv(self, host, command):
        """The ssh command line that runs a shell command on a lab host (inside its mount namespace)."""
        return ["ssh", "-i", os.path.join(self.dir, "id_ed25519"), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "root@" + host["ip"], command]

    def ssh(self, host, command):
        """Run a shell command on a lab host over ssh (inside its mount namespace)."""
        return subprocess.run(self.ssh_argv(host, command), capture_output=True, stdin=subprocess.DEVNULL, text=True,
                              timeout=60, check=False)

    def cut(self, host):
        """Take a host off the network (its bridge port down)."""
        sh(["ip", "link", "set", host["veth"], "down"])

    def reconnect(self, host):
        sh(["ip", "link", "set", host["veth"], "up"])

    def _close_master(self, host):
        """The client side: Ansible's persistent SSH connection to this host."""
        subprocess.run(["ssh", "-O", "exit", "-o", "ControlPath=%s/cp-%s" % (self.dir, host["ip"]), host["ip"]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def _pids(self, host):
        """The host side: sshd, every session it forked, anything else running in the host's namespace."""
        pids = [int(p) for p in sh(["ip", "netns", "pids", host["ns"]], check=False).stdout.split()]
        return [p for p in dict.fromkeys([host.get("pid")] + pids) if p and _alive(p)]

    def _signal(self, host, sig):
        for pid in self._pids(host):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # ---- down ---------------------------------------------------------
    def down(self):
        if not self.meta:
            return
        for h in self.hosts:
            self._close_master(h)
            self._signal(h, signal.SIGTERM)
        for h in self.hosts:
            pid = h.get("pid")
            for _attempt in range(50):
                if not pid or not os.path.exists("/proc/%d" % pid):
                    break
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
        for ns in [h["ns"] for h in self.hosts] + [self.meta["peer"]["ns"]]:
            sh(["ip", "netns", "del", ns], check=False)
        for veth in [h["veth"] for h in self.hosts] + [self.meta["peer"]["veth"], self.meta["bridge"]]:
            sh(["ip", "link", "del", veth], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.meta = None


def _alive(pid):
    """Whether pid runs (a zombie does not; one that is our child is reaped here)."""
    if not pid:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status", "instances"])
    parser.add_argument("target", nargs="?", default=None, help="up: how many hosts (3)")
    parser.add_argument("--dir", default=DEFAULT_DIR)
    parser.add_argument("--python", default=None, help="interpreter Ansible uses on lab hosts")
    args = parser.parse_args(argv)
    lab = Lab(args.dir)
    if args.action == "up":
        try:
            count = int(args.target or 3)
        except ValueError:
            parser.error("up takes a number of hosts, not %r" % args.target)
        lab.up(count, args.python)
        print("lab up: %d hosts, inventory %s" % (len(lab.hosts), lab.inventory))
    elif args.action == "down":
        lab.down()
        print("lab down")
    elif args.action == "instances":
        key = os.path.join(lab.dir, "id_ed25519")
        print(json.dumps([{"instance": h["name"], "address": h["ip"], "user": "root", "port": 22,
                           "identity_file": key} for h in lab.hosts]))
    else:
        print(json.dumps(lab.meta, indent=1) if lab.meta else "no lab in %s" % args.dir)


if __name__ == "__main__":
    main()
