# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of lab hosts on this one machine, reached by Ansible over SSH.

    lab.py up N [--dir D]     create N hosts (and a traffic peer), write D/inventory.ini
    lab.py down [--dir D]     remove everything the lab in D created
    lab.py status [--dir D]   what the lab in D is made of
    lab.py instances [--dir D]  its hosts as molecule's instance config (JSON)
    lab.py reboot HOST [--dir D]  simulate a reboot of one host (see below)

Each host is a network namespace with its own mount namespace: its own
bpffs at /sys/fs/bpf, its own sshd, its own /var/lib/wirespeed (a bind
mount of D/disk/HOST: the host's disk, which survives a reboot), and a veth
pair mon0/mon0p inside it as a monitoring port for the mirror.
Its `eth0` hangs on a bridge in the root namespace, which also holds the
controller's address; a `peer` namespace on the same bridge sends traffic.
Names carry a random suffix; addresses come from 198.18.0.0/15 (RFC 2544,
benchmarking) so they do not meet a real network.

`reboot HOST` ends every process of the host (`ip netns pids`), closes the
controller's SSH ControlMaster to it, detaches every XDP program and deletes
every clsact qdisc in its namespace, and starts it again: a new mount
namespace with a fresh, empty bpffs and the same disk. Before sshd starts
the host boots: every .service enabled under /var/lib/wirespeed/systemd/ (a
symlink or file in any *.target.wants/ there; the inventory sets
persistence_unit_dir to that directory) has its [Service] ExecStart= lines
run one after another, systemd-style: Environment= applied over a clean
PATH, prefixes -@:+! understood, ${VAR} and a lone $VAR expanded, %n %N %%
resolved, 60 s per command. A failing command without `-` skips the rest
of its unit, never the boot. Each command, its output and its exit status
go to D/boot_HOST.log. `up` starts hosts the same way.
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
UNIT_DIR = STATE_DIR + "/systemd"  # where a lab host keeps its systemd units (the real default: /etc/systemd/system)
BOOT_TIMEOUT = 60  # seconds for each ExecStart command of the boot sequence
BOOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # systemd's default PATH


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

    def boot_log(self, host):
        return os.path.join(self.dir, "boot_%s.log" % host["name"])

    def _start(self, host):
        """Start (or restart) a host: a new mount namespace with a fresh bpffs and the host's disk,
        the boot sequence (enabled units' ExecStart), then sshd in the foreground."""
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
        script = ("mount -t bpf bpf /sys/fs/bpf && mount --bind %s %s "
                  "&& { %s %s boot-units %s %s; exec %s -D -e -f %s; }"
                  % (q(self.disk(host)), STATE_DIR, q(sys.executable), q(os.path.abspath(__file__)), UNIT_DIR,
                     q(self.boot_log(host)), SSHD, q(conf)))
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

    # ---- reboot -------------------------------------------------------
    def reboot(self, name):
        """Power-cycle one host: its processes end, the kernel forgets its XDP and TC attachments, its
        bpffs is new and empty, its disk stays; it boots (enabled units) and answers on SSH again."""
        if not self.meta:
            raise SystemExit("no lab in %s" % self.dir)
        try:
            host = self.host(name)
        except StopIteration:
            raise SystemExit("no host %r in the lab in %s (hosts: %s)"
                             % (name, self.dir, ", ".join(h["name"] for h in self.hosts))) from None
        self._stop(host)
        self._detach(host)
        self._start(host)
        # the boot sequence runs before sshd: allow each ExecStart= on the disk its timeout
        self._wait_ssh(timeout=20 + BOOT_TIMEOUT * _count_exec_start(os.path.join(self.disk(host), "systemd")),
                       hosts=[host])
        return host

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

    def _stop(self, host, timeout=5):
        self._close_master(host)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self._signal(host, sig)
            deadline = time.time() + timeout
            while self._pids(host) and time.time() < deadline:
                time.sleep(0.05)
            if not self._pids(host):
                return
        raise RuntimeError("processes of lab host %s survived SIGKILL: %s" % (host["name"], self._pids(host)))

    def _detach(self, host):
        """What a reboot takes from the kernel: XDP programs (native and generic) and clsact qdiscs."""
        ns = host["ns"]
        links = sh(["ip", "-n", ns, "-o", "link", "show"]).stdout.splitlines()
        for dev in [line.split(":")[1].strip().split("@")[0] for line in links if ":" in line]:
            for mode in ("xdp", "xdpgeneric", "xdpdrv"):
                sh(["ip", "-n", ns, "link", "set", "dev", dev, mode, "off"], check=False)
            gone = sh(["tc", "-n", ns, "qdisc", "del", "dev", dev, "clsact"], check=False)
            if gone.returncode and not re.search(r"no such|cannot find|invalid handle|no qdisc", gone.stderr, re.I):
                raise RuntimeError("lab host %s: cannot delete clsact on %s: %s" % (host["name"], dev, gone.stderr))
        left = sh(["ip", "-n", ns, "link", "show"]).stdout
        if "prog/xdp" in left:
            raise RuntimeError("lab host %s: an XDP program stayed attached after the reboot: %s"
                               % (host["name"], left))

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


# ---- the boot sequence: `lab.py boot-units UNIT_DIR LOG`, run inside a host's mount namespace before sshd ----
TARGET_ORDER = ["local-fs.target", "sysinit.target", "network-pre.target", "basic.target", "network.target",
                "network-online.target", "multi-user.target", "graphical.target"]


def _count_exec_start(unit_dir):
    """How many ExecStart= lines the unit files under unit_dir hold (an upper bound for the boot's length)."""
    count = 0
    for root, _dirs, files in os.walk(unit_dir):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            try:
                with open(path, errors="replace") as fh:
                    count += sum(1 for line in fh if line.strip().startswith("ExecStart"))
            except OSError:
                pass
    return count


def enabled_units(unit_dir):
    """[(unit name, the file it points to, the target that wants it)] for every unit enabled under unit_dir:
    a symlink or a file in any *.target.wants/ there, targets in boot order, units by name, each unit once."""
    if not os.path.isdir(unit_dir):
        return []
    wants = [d for d in os.listdir(unit_dir) if d.endswith(".target.wants")
             and os.path.isdir(os.path.join(unit_dir, d))]
    wants.sort(key=lambda d: (TARGET_ORDER.index(d[:-6]) if d[:-6] in TARGET_ORDER else len(TARGET_ORDER), d))
    units = {}
    for d in wants:
        for name in sorted(os.listdir(os.path.join(unit_dir, d))):
            path = os.path.join(unit_dir, d, name)
            if name.endswith(".service") and name not in units:
                units[name] = (name, os.path.realpath(path), d[:-6])
    return list(units.values())


def parse_unit(path):
    """The [Service] section of a unit file: (environment, [(prefix, words)] for each ExecStart=)."""
    with open(path) as fh:
        text = re.sub(r"\\\n", " ", fh.read())
    env, commands, section = {}, [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Service" or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if key == "Environment":
            for item in shlex.split(value):
                if "=" in item:
                    k, v = item.split("=", 1)
                    env[k] = v
        elif key == "ExecStart":
            if not value:
                commands = []  # an empty ExecStart= resets the list, as in systemd
                continue
            prefix = re.match(r"[-@:+!]*", value).group(0)
            commands.append((prefix, value, shlex.split(value[len(prefix):])))
    return env, commands


def expand(words, env):
    """systemd's variable expansion in ExecStart=: "$VAR" as a word becomes its whitespace-separated
    words, "${VAR}" anywhere becomes its value, "$$" a single "$"."""
    out = []
    for word in words:
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:
            out += env.get(whole.group(1), "").split()
        else:
            out.append(re.sub(r"\$\$|\$\{(\w+)\}",
                              lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), ""), word))
    return out


def specifiers(words, unit):
    """The few systemd specifiers a lab unit may use: %n (unit name), %N (without its suffix), %% (a %)."""
    table = {"%": "%", "n": unit, "N": unit.rsplit(".", 1)[0]}
    return [re.sub(r"%(.)", lambda m: table.get(m.group(1), m.group(0)), word) for word in words]


def boot_units(unit_dir, log_path, timeout=BOOT_TIMEOUT):
    """Run the ExecStart= commands of every enabled unit, one after another, each for at most timeout
    seconds, output and exit status appended to log_path. Returns the number of units that failed."""
    failed = 0
    with open(log_path, "a") as log:
        def say(text):
            log.write(text + "\n")
            log.flush()
        units = enabled_units(unit_dir)
        say("== boot started %s: %d enabled unit(s) in %s" % (time.strftime("%Y-%m-%dT%H:%M:%S"), len(units), unit_dir))
        for name, path, target in units:
            say("-- %s (%s, wanted by %s)" % (name, path, target))
            try:
                env, commands = parse_unit(path)
            except (OSError, ValueError) as exc:
                say("%s: cannot read the unit: %s" % (name, exc))
                failed += 1
                continue
            env = dict({"PATH": BOOT_PATH}, **env)
            for prefix, raw, words in commands:
                argv = specifiers(words, name)
                argv = argv if ":" in prefix else expand(argv, env)
                executable = argv[0] if argv else None
                if "@" in prefix:
                    argv = argv[1:]
                say("$ ExecStart=%s" % raw)
                status = _run_command(executable, argv, env, log, timeout)
                say("%s: ExecStart=%s: %s" % (name, raw, status if isinstance(status, str)
                                              else "exit status %d" % status))
                if status != 0:
                    if "-" in prefix:
                        say("%s: failure ignored (the command has a '-' prefix)" % name)
                        continue
                    say("%s: failed; its remaining ExecStart= lines are skipped" % name)
                    failed += 1
                    break
        say("== boot finished: %d unit(s), %d failed" % (len(units), failed))
    return failed


def _run_command(executable, argv, env, log, timeout):
    """Run one command; its exit status (a negative one for a signal), or a sentence why it did not run."""
    if not executable or not argv:
        return "empty command line"
    try:
        proc = subprocess.Popen(argv, executable=executable, env=env, cwd="/", stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
    except OSError as exc:
        return "cannot start: %s" % exc
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return "timed out after %d s, killed" % timeout


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["boot-units"]:  # hidden: the boot sequence, run by a host's start script
        if len(argv) != 3:
            raise SystemExit("usage: lab.py boot-units UNIT_DIR LOG")
        boot_units(argv[1], argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status", "instances", "reboot"])
    parser.add_argument("target", nargs="?", default=None, help="up: how many hosts (3); reboot: which host")
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
    elif args.action == "reboot":
        if not args.target:
            parser.error("reboot takes the name of a host")
        lab.reboot(args.target)
        print("lab host %s rebooted, boot log %s" % (args.target, lab.boot_log(lab.host(args.target))))
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
