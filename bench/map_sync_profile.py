# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a map sync spends its time: per-phase CPU seconds of mapsync.sync, the call bench/map_sync.py times.

    python bench/map_sync_profile.py [--firewall] [--rounds 7] [--cprofile]

The same 100k addresses (and 1% change) as bench/map_sync.py, into its plain hash map, or with --firewall into
the firewall's per-CPU deny_v4 beside 10k CIDRs in deny_net_v4 (so the prefilter's cover and refresh run).
Phases are timed by wrapping the engine's functions; CPU seconds (user + system of this process), so other
load on the machine moves them less than wall time. Prints the median round of each case (a phase called
inside another, e.g. the state write of the refresh, counts in both: "other" can go below zero).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "collections"))
sys.path.insert(0, os.path.join(REPO, "bench"))

import map_sync  # noqa: E402
import programs  # noqa: E402

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.indexes import prefilter  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs, maps  # noqa: E402

PHASES = {}


def timed(label, fn):
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            PHASES[label] = PHASES.get(label, 0.0) + time.process_time() - start
    return wrapper


def instrument():
    for attr, label in (("dump_packed", "dump"), ("write_packed", "kernel write"), ("delete", "kernel delete")):
        setattr(maps.PinnedMap, attr, timed(label, getattr(maps.PinnedMap, attr)))
    mapsync.normalize = timed("normalize", mapsync.normalize)
    mapsync.MapTypes = timed("types (BTF)", mapsync.MapTypes)
    mapsync.EntryEncoder.encode = timed("encode", mapsync.EntryEncoder.encode)
    mapsync.plan_keys = timed("diff", mapsync.plan_keys)
    mapsync.plan_sync = timed("diff", mapsync.plan_sync)
    prefilter.Prefilter.cover = timed("prefilter cover", prefilter.Prefilter.cover)
    prefilter.Prefilter.refresh = timed("prefilter refresh", prefilter.Prefilter.refresh)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firewall", action="store_true")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cprofile", action="store_true", help="also print the top functions of each case")
    args = parser.parse_args()
    addrs, _cidrs = map_sync.datasets(100000, 10000)
    step = len(addrs) // 100
    changed = addrs[step:] + ["192.0.%d.%d" % (i // 256, i % 256) for i in range(step)]
    bpffs.ensure_bpffs()
    root = os.path.join(bpffs.DEFAULT_BPFFS, "wsprof%05x" % random.randrange(1 << 20))
    try:
        if args.firewall:
            fw = programs.Loaded(os.path.join(REPO, "files", "bpf", "firewall.bpf.c"), os.path.join(root, "fw"))
            mapsync.sync(fw.maps["deny_net_v4"], entries=programs.deny_nets(random.Random(7), 10000),
                         key_type="ipv4_cidr", diff=False)
            target = fw.maps["deny_v4"]
        else:
            bench = programs.Loaded(map_sync.BENCH_SRC, os.path.join(root, "bench"))
            target = bench.maps["feed"]
        instrument()

        def sync(entries):
            return lambda: mapsync.sync(target, entries=entries, key_type="ipv4", exclusive=True, diff=False)
        cases = [("full sync of 100k", sync([]), sync(addrs)), ("no-op re-sync of 100k", sync(addrs), sync(addrs)),
                 ("1% change of 100k", sync(addrs), sync(changed))]
        where = "firewall deny_v4" if args.firewall else "bench hash map"
        print("CPU seconds, median round of %d (%s)" % (args.rounds, where))
        for label, before, run in cases:
            rounds = []
            for _round in range(args.rounds):
                before()
                PHASES.clear()
                start = time.process_time()
                run()
                rounds.append((time.process_time() - start, dict(PHASES)))
            total, phases = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
            rest = total - sum(phases.values())
            print("%-22s %.4f  %s  other %.4f" % (label, total, "  ".join("%s %.4f" % kv for kv in phases.items()),
                                                  rest))
            if args.cprofile:
                before()
                prof = cProfile.Profile()
                prof.runcall(run)
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(10)
                print(out.getvalue())
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
