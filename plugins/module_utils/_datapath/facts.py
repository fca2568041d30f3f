"""What a host offers the datapath, for preflight checks: kernel, bpffs, interfaces, who is connected."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

from .kernel import bpffs, links

# Link kinds whose drivers have no native XDP: generic (skb) mode only.
NO_NATIVE = {"bridge", "vlan", "macvlan", "macvtap", "ipvlan", "dummy", "loopback", "ipip", "gre", "gretap",
             "ip6gre", "ip6gretap", "sit", "ip6tnl", "vti", "vti6", "wireguard", "vxlan", "geneve", "team",
             "vrf", "ifb", "nlmon", "can", "bareudp"}
# Virtual kinds and hardware drivers known to run XDP natively.
NATIVE_KINDS = {"veth", "bond", "tun", "netkit", "xen-netfront"}
NATIVE_DRIVERS = {"virtio_net", "ixgbe", "ixgbevf", "i40e", "ice", "igb", "igc", "mlx4_en", "mlx4_core", "mlx5_core",
                  "ena", "nfp", "bnxt_en", "qede", "thunder_nicvf", "sfc", "tap", "hv_netvsc", "stmmaceth",
                  "fec", "mvneta", "mvpp2", "dpaa2-eth", "lan966x-switch", "gve", "idpf", "atlantic", "txgbe",
                  "ngbe", "octeontx2-nicpf", "cpsw", "am65-cpsw-nuss", "enetc", "bcmgenet"}
OFFLOAD_DRIVERS = {"nfp", "netdevsim"}


def driver(name: str) -> str | None:
    """The kernel driver behind an interface, None for virtual ones."""
    try:
        return os.path.basename(os.readlink("/sys/class/net/%s/device/driver" % name))
    except OSError:
        return None


def _release():
    return os.uname().release


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of a release string such as 6.18.0-1-amd64."""
    parts = (release or _release()).split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def controller_address(pid: int | None = None) -> str | None:
    """The address this process's SSH session comes from, found in SSH_CONNECTION up the process tree.

    sudo and Ansible's become drop SSH_CONNECTION from the environment of the
    module itself, so the parents' environments are read too (root can).
    """
    pid = pid or os.getpid()
    for _depth in range(32):
        try:
            with open("/proc/%d/environ" % pid, "rb") as fh:
                env = fh.read().split(b"\0")
            with open("/proc/%d/stat" % pid) as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        for item in env:
            if item.startswith(b"SSH_CONNECTION="):
                fields = item.split(b"=", 1)[1].decode(errors="replace").split()
                return fields[0] if fields else None
        if parent <= 1:
            return None
        pid = parent
    return None


def xdp_native(kind: str | None, driver: str | None) -> bool | None:
    """Whether a link of this kind and driver runs XDP natively: True, False, or None when not known."""
    if kind in NO_NATIVE:
        return False
    if kind in NATIVE_KINDS or driver in NATIVE_DRIVERS:
        return True
    return None  # unknown: the attach itself will tell, and leave the previous datapath


def rx_queues(name: str) -> int | None:
    """RX queues the interface uses now (sysfs queues/rx-*; ethtool's channels), or None when sysfs does not show
    it (a /sys of another network namespace)."""
    try:
        return len([q for q in os.listdir("/sys/class/net/%s/queues" % name) if q.startswith("rx-")]) or None
    except OSError:
        return None


def facts(bpffs_path: str = bpffs.DEFAULT_BPFFS) -> dict:
    """{kernel, kernel_version, bpffs, btf, controller_address, interfaces: {name: {...}}}."""
    interfaces = {}
    for name, (index, kind) in sorted(links.link_kinds().items()):
        driver_ = driver(name)
        interfaces[name] = {"ifindex": index, "kind": kind or "hardware", "driver": driver_,
                            "xdp_native": xdp_native(kind, driver_), "xdp_offload": driver_ in OFFLOAD_DRIVERS,
                            "rx_queues": rx_queues(name)}
    return {
        "kernel": _release(), "kernel_version": list(kernel_version()),
        "bpffs": {"path": bpffs_path, "mounted": bpffs.mounted_bpffs(bpffs_path),
                  "mountable": os.path.isdir(bpffs_path)},
        "btf": os.path.exists("/sys/kernel/btf/vmlinux"),
        "controller_address": controller_address(),
        "interfaces": interfaces,
    }
