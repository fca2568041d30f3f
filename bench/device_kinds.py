# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which hooks and modes work on each kind of device this kernel can create, measured: the table in README.md.

    python bench/device_kinds.py

For each kind (veth, bond, VLAN, WireGuard, VXLAN, macvlan, bridge) it creates one device in a fresh network
namespace, then tries: native XDP (a frags-aware XDP_PASS program, and a single-buffer one at MTU 9000), generic
XDP, and a tc clsact ingress filter, each with the engine's own calls (kernel/xdp_netlink.py, tc_netlink.py), and
prints yes / no (the kernel's words) / "cannot create here" when the kernel lacks the driver. Nothing leaves the
namespace, which is removed afterwards.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from netlab import netns  # noqa: E402

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import (  # noqa: E402
    libbpf,
    links,
    xdp_netlink,
)
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program import compile as bpfcc  # noqa: E402
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.bpf_object import (  # noqa: E402
    BpfObject,
)

KINDS = [
    ("veth", ["type", "veth", "peer", "name", "p0"]),
    ("bond", ["type", "bond"]),
    ("VLAN (on a veth)", ["link", "l0", "type", "vlan", "id", "7"]),
    ("WireGuard", ["type", "wireguard"]),
    ("VXLAN", ["type", "vxlan", "id", "7", "dstport", "4789", "local", "192.0.2.1"]),
    ("macvlan (on a veth)", ["link", "l0", "type", "macvlan", "mode", "bridge"]),
    ("bridge", ["type", "bridge"]),
]


def sh(*argv, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def loaded(src, frags):
    obj = BpfObject(bpfcc.compile_source(src, [os.path.join(REPO, "files", "bpf", "include")])["path"])
    obj.select(None, libbpf.PROG_TYPE_XDP)
    obj.set_frags(frags)
    obj.load()
    return obj


def try_xdp(dev, obj, mode):
    try:
        index = links.ifindex(dev)
        xdp_netlink.attach(index, obj.prog_fd, mode, None, dev)
        xdp_netlink.detach(index, mode, obj.prog_fd, dev)
        return "yes"
    except DatapathError as exc:
        return "no (%s)" % exc.message.split("(", 1)[-1].split(")", 1)[0]


def main():
    ns = "wskinds%05x" % random.randrange(1 << 20)
    pass_src = os.path.join(REPO, "bench", "bpf", "bare_pass.bpf.c")
    frags_src = os.path.join(REPO, "files", "bpf", "examples", "drop_port.bpf.c")  # frags-aware, passes all
    rows = []
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sh("ip", "link", "add", "l0", "type", "veth", "peer", "name", "l1", ns=ns)
        plain, frags = loaded(pass_src, False), loaded(frags_src, True)
        for kind, spec in KINDS:
            made = sh("ip", "link", "add", "d0", *spec, ns=ns)
            if made.returncode:
                rows.append((kind, "cannot create here (%s)" % made.stderr.strip(), "", "", "", ""))
                continue
            sh("ip", "link", "set", "d0", "up", ns=ns)
            with netns(ns):
                native = try_xdp("d0", frags, "native")
                generic = try_xdp("d0", frags, "generic")
                jumbo = "-"
                if sh("ip", "link", "set", "d0", "mtu", "9000", ns=ns).returncode == 0:
                    if kind == "veth":
                        sh("ip", "link", "set", "p0", "mtu", "9000", ns=ns)
                    jumbo = "%s / %s" % (try_xdp("d0", plain, "native"), try_xdp("d0", frags, "native"))
                    sh("ip", "link", "set", "d0", "mtu", "1500", ns=ns)
            sh("tc", "qdisc", "add", "dev", "d0", "clsact", ns=ns)
            tc = sh("tc", "filter", "add", "dev", "d0", "ingress", "bpf", "da", "obj",
                    bpfcc.compile_source(os.path.join(REPO, "tests", "integration", "bpf", "tc_verdict.bpf.c"),
                                         [os.path.join(REPO, "files", "bpf", "include")])["path"], "sec", "tc",
                    ns=ns)
            rows.append((kind, native, generic, jumbo,
                         "yes" if tc.returncode == 0 else "no (%s)" % " ".join(tc.stderr.split()), ""))
            sh("ip", "link", "del", "d0", ns=ns)
        plain.close()
        frags.close()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    print("kernel %s" % os.uname().release)
    print("| device | native XDP | generic XDP | native at MTU 9000: single-buffer / frags | tc clsact |")
    print("|---|---|---|---|---|")
    for kind, native, generic, jumbo, tc, _note in rows:
        print("| %s | %s | %s | %s | %s |" % (kind, native, generic, jumbo, tc))


if __name__ == "__main__":
    main()
