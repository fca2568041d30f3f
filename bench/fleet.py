# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a converge costs next to Ansible's own cost, on lab fleets of several sizes, side by side in one run.

For each fleet size: `ansible -m ping` over the fleet, site.yml's first run, site.yml with nothing to change
(the fast path: each host finds itself converged to the run's intent and skips its roles), the same no-op
with the fast path off (-e wirespeed_full_converge=true: every role checks every program and map, which is
also what a host that drifted costs), status.yml and rollback.yml, each in seconds and as a ratio to the ping
of the same fleet; the no-op run per host; and what one lab host costs in memory (its sshd and sessions, by
RSS). The demo's four roles are on every host. Run as root: `python bench/fleet.py --hosts 5,10,20
[--forks 10]`. Figures vary by machine; the ratios are what count. Goals (issue 18): no-op <= 6x the ping,
first run <= 10x, rollback <= 2x.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
sys.path.insert(0, HERE)
import results  # noqa: E402
from demo import inventory_vars  # noqa: E402
from lab import Lab  # noqa: E402

BIN = os.path.dirname(sys.executable)
PLAYBOOKS = os.path.join(REPO, "playbooks")


def timed(cmd, env):
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("%s failed (exit %d):\n%s" % (" ".join(cmd[:4]), proc.returncode, proc.stdout[-3000:]))
    return took


def host_memory_kib(lab):
    """RSS of every process in each lab host's network namespace (its sshd and what it runs), per host."""
    totals = []
    for host in lab.hosts:
        pids = subprocess.run(["ip", "netns", "pids", host["ns"]], capture_output=True, text=True,
                              check=False).stdout.split()
        total = 0
        for pid in pids:
            try:
                with open("/proc/%s/status" % pid) as fh:
                    total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
        totals.append(total)
    return sum(totals) / len(totals) if totals else 0


def measure(count, forks):
    lab = Lab(tempfile.mkdtemp(prefix="wsbench-") + "/lab")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORKS=str(forks), ANSIBLE_NOCOLOR="1")
    lab.up(count, python=sys.executable)
    try:
        inventory_vars_quiet(lab)
        inv = ["-i", lab.inventory]
        book = [os.path.join(BIN, "ansible-playbook")] + inv
        row = {"hosts": count}
        row["ping"] = timed([os.path.join(BIN, "ansible"), "all"] + inv + ["-m", "ansible.builtin.ping"], env)
        row["first"] = timed(book + [os.path.join(PLAYBOOKS, "site.yml")], env)
        row["noop"] = timed(book + [os.path.join(PLAYBOOKS, "site.yml")], env)
        row["noop_full"] = timed(book + [os.path.join(PLAYBOOKS, "site.yml"), "-e", "wirespeed_full_converge=true"],
                                 env)
        row["status"] = timed(book + [os.path.join(PLAYBOOKS, "status.yml")], env)
        row["rollback"] = timed(book + [os.path.join(PLAYBOOKS, "rollback.yml")], env)
        row["memory_mib"] = host_memory_kib(lab) / 1024
        return row
    finally:
        lab.down()


def inventory_vars_quiet(lab):
    with open(os.devnull, "w") as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        try:
            inventory_vars(lab)
        finally:
            sys.stdout = stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default="5,10,20", help="fleet sizes, comma-separated")
    parser.add_argument("--forks", type=int, default=10)
    args = parser.parse_args(argv)
    rows = [measure(int(n), args.forks) for n in args.hosts.split(",")]
    print("\nfleet | ping s | site first s (x ping) | site no-op s (x ping) | no-op s/host | no-op, fast path off "
          "s (x) | status s (x) | rollback s (x) | MiB/host")
    for r in rows:
        p = r["ping"]
        print("%5d | %6.1f | %6.1f (%4.1fx) | %6.1f (%4.1fx) | %5.2f | %6.1f (%4.1fx) | %5.1f (%3.1fx) "
              "| %5.1f (%3.1fx) | %5.1f"
              % (r["hosts"], p, r["first"], r["first"] / p, r["noop"], r["noop"] / p, r["noop"] / r["hosts"],
                 r["noop_full"], r["noop_full"] / p, r["status"], r["status"] / p, r["rollback"],
                 r["rollback"] / p, r["memory_mib"]))
    big = rows[-1]
    for what, key, goal in (("no-op", "noop", 6), ("first run", "first", 10), ("rollback", "rollback", 2)):
        ratio = big[key] / big["ping"]
        print("goal %-9s <= %2dx ping at %d hosts: %5.1fx  %s" % (what, goal, big["hosts"], ratio,
                                                                  "met" if ratio <= goal else "NOT met"))
        results.target("fleet", "site.yml %s / ansible ping, %d hosts" % (what, big["hosts"]), ratio, "<=", goal)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print("no-op per host from %d to %d hosts: %.2fx (flat is 1.0)"
              % (first["hosts"], last["hosts"], (last["noop"] / last["hosts"]) / (first["noop"] / first["hosts"])))


if __name__ == "__main__":
    main()
