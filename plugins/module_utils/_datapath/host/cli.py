"""The host tool's command line: `python3 wirespeed.pyz restore|watchdog|expire|metrics|flows`.

This is the zipapp's entry (host/tool.py builds the tool from the modules it
imports). It runs on the managed host without Ansible: from the boot unit,
the commit-confirmed timer, the metrics timer and the flow agent's service.
Every command prints one JSON line and exits 1 when it did not succeed.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..errors import DatapathError
from ..kernel import bpffs
from ..record.store import DEFAULT_STATE_DIR
from . import confirm, flows, metrics, restore, units


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wirespeed.pyz", description="The wirespeed host tool.")
    parser.add_argument("command", choices=["restore", "watchdog", "expire", "metrics", "flows"])
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    parser.add_argument("--bpffs", default=bpffs.DEFAULT_BPFFS)
    parser.add_argument("--wait", type=float, default=restore.DEFAULT_WAIT,
                        help="restore: seconds the unit stays starting (network-pre.target held) for missing devices")
    parser.add_argument("--watch", type=float, default=0.0,
                        help="restore: seconds after the start that devices appearing later are still attached")
    parser.add_argument("--token", help="the arming to watch or expire")
    parser.add_argument("--dir", help="node_exporter's textfile directory (metrics)")
    parser.add_argument("--generic-ok", action="append", default=[], help="an interface meant to run generic XDP")
    flows_args = parser.add_argument_group("flows (the flow export agent; runs until SIGTERM)")
    flows_args.add_argument("--interface")
    flows_args.add_argument("--name", default="flow_export")
    flows_args.add_argument("--output", default="/var/log/wirespeed/flows.jsonl")
    flows_args.add_argument("--idle", type=float, default=15.0)
    flows_args.add_argument("--active", type=float, default=60.0)
    flows_args.add_argument("--max-bytes", type=int, default=64 << 20)
    flows_args.add_argument("--backups", type=int, default=5)
    flows_args.add_argument("--sample-rate", type=int, default=1)
    flows_args.add_argument("--ipfix", help="also send IPFIX over UDP to this collector, address:port")
    flows_args.add_argument("--seconds", type=float, help="stop after this long (default: run until SIGTERM)")
    args = parser.parse_args(argv)
    try:
        if args.command == "flows":
            maps_dir = os.path.join(bpffs.interface_dir(args.bpffs, args.interface or ""), args.name, "maps")
            report = flows.run(maps_dir, args.output, idle=args.idle, active=args.active, max_bytes=args.max_bytes,
                               backups=args.backups, sample_rate=args.sample_rate,
                               labels={"interface": args.interface, "program": args.name},
                               stats_file=flows.stats_path(args.state_dir, args.interface), seconds=args.seconds,
                               ipfix=args.ipfix)
        elif args.command == "metrics":
            text = metrics.collect(args.state_dir, args.bpffs, args.generic_ok)
            report = {"ok": True, "path": metrics.write(args.dir or metrics.DEFAULT_DIR, text, "--dir"),
                      "samples": sum(1 for line in text.splitlines() if not line.startswith("#"))}
        elif args.command == "restore":
            report = restore.restore(args.state_dir, bpffs_path=args.bpffs, wait=args.wait, watch=args.watch,
                                     ready=lambda: units.notify_ready("datapath restored on the devices present"))
        elif args.command == "watchdog":
            report = confirm.watchdog(args.state_dir, args.bpffs, args.token)
        else:
            report = confirm.expire(args.state_dir, args.bpffs, args.token)
    except DatapathError as exc:
        report = {"ok": False, "msg": exc.message}
    sys.stdout.write(json.dumps(dict(report, at=_now()), sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0 if report.get("ok", True) else 1
