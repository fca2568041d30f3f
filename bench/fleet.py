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

With --feed 100000[,1000000] it measures the hourly threat-feed update instead (issue 25), on a fresh lab per
fleet size and feed size, the firewall role alone with its deny list from a feed file: the median of three
pings, site.yml's first run, the no-op, one line added to the feed, and 1% of the feed's lines replaced, each as
x ping; and what the controller sends per host for the feed (the packed lists in the module call). Goals: one
line added <= 3x ping at 10 hosts with 100k entries, first run <= 10x, no-op <= 2x, <= 8 MB per host for 1M.
`python bench/fleet.py --hosts 10 --feed 100000` (add --skip-demo to leave out the demo's rows).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import statistics
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

sys.path.insert(0, os.path.join(REPO, "build", "collections"))
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


FEED_NET = ipaddress.ip_network("100.64.0.0/10")  # shared address space: no lab host, peer or controller in it


def write_feed(path, entries):
    with open(path, "w") as fh:
        fh.write("# bench feed: %d addresses\n" % len(entries))
        fh.write("\n".join(entries) + "\n")


def feed_entries(count, rng):
    base, size = int(FEED_NET.network_address), FEED_NET.num_addresses
    return [str(ipaddress.IPv4Address(base + n)) for n in rng.sample(range(size), count)]


def packed_bytes(path):
    """What the controller puts in each host's module call for the feed: the packed lists of its four parts."""
    from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _feeds
    handle = _feeds.handle([path])
    return sum(len(_feeds.resolve(dict(handle, part=part))["data"]) for part in _feeds.PARTS)


def measure_feed(count, forks, size):
    """The threat-feed update on a fresh lab: first run, no-op, one line added, 1% replaced (seconds each)."""
    rng = random.Random(size)
    lab = Lab(tempfile.mkdtemp(prefix="wsbench-") + "/lab")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORKS=str(forks), ANSIBLE_NOCOLOR="1",
               WIRESPEED_FEED_CACHE=tempfile.mkdtemp(prefix="wsfeeds-"))
    lab.up(count, python=sys.executable)
    try:
        feed = os.path.join(lab.dir, "feed.txt")
        entries = feed_entries(size, rng)
        write_feed(feed, entries)
        os.makedirs(os.path.join(lab.dir, "group_vars"), exist_ok=True)
        with open(os.path.join(lab.dir, "group_vars", "lab.yml"), "w") as fh:
            fh.write("firewall_interfaces: [eth0]\nfirewall_deny_files: [%s]\n" % feed)
        inv = ["-i", lab.inventory]
        site = [os.path.join(BIN, "ansible-playbook")] + inv + [os.path.join(PLAYBOOKS, "site.yml")]
        row = {"hosts": count, "feed": size}
        ping = [os.path.join(BIN, "ansible"), "all"] + inv + ["-m", "ansible.builtin.ping"]
        row["ping"] = statistics.median(timed(ping, env) for _round in range(3))
        row["first"] = timed(site, env)
        row["noop"] = timed(site, env)
        print("%d hosts, %d-entry feed: ping %.1f s, first run %.1f s, no-op %.1f s" % (
            count, size, row["ping"], row["first"], row["noop"]), flush=True)
        known = set(entries)
        extra = next(a for a in feed_entries(16, random.Random(size + 1)) if a not in known)
        write_feed(feed, entries + [extra])
        row["one_line"] = timed(site, env)
        swapped = set(rng.sample(range(len(entries)), len(entries) // 100))
        fresh = iter(a for a in feed_entries(len(swapped) * 2, random.Random(size + 2)) if a not in known)
        write_feed(feed, [next(fresh) if i in swapped else e for i, e in enumerate(entries)] + [extra])
        print("%d hosts, %d-entry feed: one line added %.1f s" % (count, size, row["one_line"]), flush=True)
        row["one_pct"] = timed(site, env)
        row["packed_mb"] = packed_bytes(feed) / 1e6
        return row
    finally:
        lab.down()


def report_feed(rows):
    print("\nfeed update | fleet | entries | ping s | first s (x ping) | no-op s (x) | one line added s (x) "
          "| 1% changed s (x) | sent per host MB")
    for r in rows:
        p = r["ping"]
        print("            | %5d | %7d | %6.1f | %6.1f (%5.1fx) | %5.1f (%4.1fx) | %6.1f (%4.1fx) | %6.1f (%4.1fx) "
              "| %5.2f" % (r["hosts"], r["feed"], p, r["first"], r["first"] / p, r["noop"], r["noop"] / p,
                           r["one_line"], r["one_line"] / p, r["one_pct"], r["one_pct"] / p, r["packed_mb"]))
    for r in rows:
        where = "%d hosts, %d-entry feed" % (r["hosts"], r["feed"])
        for what, key, goal in (("one line added", "one_line", 3), ("first run", "first", 10),
                                ("no-op", "noop", 2)):
            ratio = r[key] / r["ping"]
            verdict = "met" if ratio <= goal else "NOT met"
            print("goal %-14s <= %2dx ping, %s: %5.1fx  %s" % (what, goal, where, ratio, verdict))
            results.target("fleet", "feed: site.yml %s / ansible ping, %s" % (what, where), ratio, "<=", goal)
        results.figure("fleet", "feed: site.yml 1%% of the feed changed / ansible ping, %s" % where,
                       r["one_pct"] / r["ping"], "x")
        results.target("fleet", "feed: controller sends per host, %d-entry feed" % r["feed"], r["packed_mb"], "<=",
                       8, unit="MB")


def feed_size_only(size):
    """The bytes per host for a feed size without a lab (the 1M figure, when only smaller feeds run on a lab)."""
    path = os.path.join(tempfile.mkdtemp(prefix="wsfeed-"), "feed.txt")
    try:
        write_feed(path, feed_entries(size, random.Random(size)))
        os.environ["WIRESPEED_FEED_CACHE"] = os.path.dirname(path)
        mb = packed_bytes(path) / 1e6
    finally:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    print("feed of %d entries: the controller sends %.2f MB per host (packed lists in the module call)" % (size, mb))
    results.target("fleet", "feed: controller sends per host, %d-entry feed" % size, mb, "<=", 8, unit="MB")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default="5,10,20", help="fleet sizes, comma-separated")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--feed", default="", help="feed sizes for the threat-feed scenarios, comma-separated")
    parser.add_argument("--bytes-only", default="", help="feed sizes to report the bytes per host of, without a lab")
    parser.add_argument("--skip-demo", action="store_true", help="only the feed scenarios")
    args = parser.parse_args(argv)
    for size in filter(None, args.bytes_only.split(",")):
        feed_size_only(int(size))
    if args.feed:
        report_feed([measure_feed(int(n), args.forks, int(f)) for n in args.hosts.split(",")
                     for f in args.feed.split(",")])
    if args.skip_demo:
        return
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
