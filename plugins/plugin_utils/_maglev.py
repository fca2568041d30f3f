# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""The load balancer's services checked on the controller, their Maglev lookup tables (weighted, fixed seed: every
balancer gets the same bytes), the map entries of load_balancer.bpf.c, and what a backend change moves."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import struct
import zlib

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types.parse import name_or_number
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._addresses import AddressError, kind_of, port

DEFAULT_SIZE = 65537
MAX_SIZE = 65537  # the program reserves this many slots per service (LB_TABLE_SLOTS)
MAX_SERVICES = 16  # LB_MAX_SERVICES
PER_SERVICE = 256  # LB_BACKENDS_PER_SERVICE: backends of one service, at most
SEED = b"wirespeed.maglev.v1"
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}  # icmp is ICMPv6 (58) for an IPv6 VIP
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
STATES = ("active", "draining")
ENCAPS = {4: "ipip", 6: "ip6ip6"}  # the outer header for a VIP of each family (none: MAC rewrite on this segment)
FLAG_ACTIVE, FLAG_DRAINING = 1, 2
_MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.IGNORECASE)


def is_prime(n):
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def _hash(name, salt):
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8, key=SEED, salt=salt).digest(), "little")


def table(backends, size=DEFAULT_SIZE):
    """The Maglev lookup table: `size` slots, each the index of a backend in `backends` ([(name, weight)]).

    Each backend walks its own permutation of the slots (offset and skip from its name, fixed seed) and the
    backends take turns claiming their next free slot; a backend of weight w takes a turn w/max(weight) times as
    often, so it ends with about that share of the slots. The result depends only on the names, weights and size,
    not on the order of the list."""
    if not backends:
        return []
    order = sorted(range(len(backends)), key=lambda i: backends[i][0])
    names = [backends[i][0] for i in order]
    weights = [float(backends[i][1]) for i in order]
    top = max(weights)
    offsets = [_hash(n, b"offset") % size for n in names]
    skips = [_hash(n, b"skip") % (size - 1) + 1 for n in names]
    nexts = [0] * len(names)
    credit = [0.0] * len(names)
    slots = [-1] * size
    filled = 0
    while True:
        for i in range(len(names)):
            credit[i] += weights[i] / top
            if credit[i] < 1.0:
                continue
            credit[i] -= 1.0
            off, skip, j = offsets[i], skips[i], nexts[i]
            slot = (off + j * skip) % size
            while slots[slot] >= 0:
                j += 1
                slot = (off + j * skip) % size
            nexts[i] = j + 1
            slots[slot] = order[i]
            filled += 1
            if filled == size:
                return slots


def mac(value, where):
    """A MAC address as aa:bb:cc:dd:ee:ff."""
    if not isinstance(value, str) or not _MAC.match(value.strip()):
        raise AddressError("%s is %r, which is not a MAC address; write it like 02:00:5e:00:53:01, or leave it out to "
                           "resolve it from the balancer's neighbour table." % (where, value))
    return value.strip().lower().replace("-", ":")


def _address(value, where):
    try:
        return ipaddress.ip_address(str(value).strip()) if isinstance(value, str) else ipaddress.ip_address(value)
    except ValueError:
        raise AddressError("%s is %r, which is not an IPv4 or IPv6 address; fix it." % (where, value)) from None


def check(services, variable="load_balancer_services", size=DEFAULT_SIZE, macs=None, backends_needed=True):
    """The services, checked: [{vip, family, proto, port, size, index, encap, backends: [{address, mac, weight,
    state}]}].

    With `backends_needed` False (a backend's own side of direct server return, which needs the VIPs and their
    encapsulation only), a service may leave its backends out or empty; given ones are still checked.

    `macs` maps backend addresses to MACs resolved on the balancer (for an encapsulated service, the MAC of the
    backend's next hop); a backend without `mac` takes it from there.
    With `macs` None, MACs are not required (the first pass, before resolution)."""
    if not isinstance(services, (list, tuple)):
        raise AddressError("%s must be a list of services, not %s." % (variable, kind_of(services)))
    if isinstance(size, bool) or not isinstance(size, int) or not is_prime(size) or size > MAX_SIZE:
        raise AddressError("load_balancer_table_size is %r; give a prime number up to %d (65537 is the default)."
                           % (size, MAX_SIZE))
    if len(services) > MAX_SERVICES:
        raise AddressError("%s has %d services; the program holds at most %d."
                           % (variable, len(services), MAX_SERVICES))
    out, seen = [], {}
    for n, svc in enumerate(services):
        where = "%s item %d" % (variable, n + 1)
        if not isinstance(svc, dict):
            raise AddressError("%s is %s; write it as {vip, proto, port, backends}." % (where, kind_of(svc)))
        vip = _address(svc.get("vip"), where + " vip")
        proto = name_or_number(svc.get("proto", "tcp"), PROTOCOLS)  # names only: icmp means ICMPv6 on IPv6
        if proto is None:
            raise AddressError("%s proto is %r; use tcp, udp or icmp." % (where, svc.get("proto")))
        proto_name = PROTOCOL_NAMES[proto]
        if proto_name == "icmp":
            if svc.get("port") not in (None, 0):
                raise AddressError("%s has port %r but proto icmp; leave the port out." % (where, svc.get("port")))
            number = 0
            if vip.version == 6:
                proto = 58
        else:
            number = port(svc.get("port"), where + " port")
        key = (str(vip), proto, number)
        if key in seen:
            raise AddressError("%s repeats the service %s %s/%d of item %d; merge them." % (
                where, vip, proto_name, number, seen[key]))
        seen[key] = n + 1
        encap = str(svc.get("encap") or "none").lower()
        if encap not in ("none", ENCAPS[vip.version]):
            raise AddressError("%s encap is %r; an IPv%d VIP takes none (backends on this segment) or %s."
                               % (where, svc.get("encap"), vip.version, ENCAPS[vip.version]))
        backends = svc.get("backends")
        if not backends_needed and backends in (None, [], ()):
            out.append({"vip": str(vip), "family": vip.version, "proto": proto, "proto_name": proto_name,
                        "port": number, "size": size, "index": n, "encap": encap, "backends": []})
            continue
        if not isinstance(backends, (list, tuple)) or not backends:
            raise AddressError("%s backends is %s; give at least one backend." % (
                where, "empty" if isinstance(backends, (list, tuple)) else kind_of(backends)))
        if len(backends) > PER_SERVICE:
            raise AddressError("%s has %d backends; a service takes at most %d, so split it."
                               % (where, len(backends), PER_SERVICE))
        if len(backends) * 100 > size:
            raise AddressError("%s has %d backends; a table of %d slots holds at most %d (100 slots each), so "
                               "raise load_balancer_table_size or split the service."
                               % (where, len(backends), size, size // 100))
        checked, addrs = [], set()
        for b, given in enumerate(backends):
            bwhere = "%s backends item %d" % (where, b + 1)
            be = given if isinstance(given, dict) else {"address": given}
            addr = _address(be.get("address"), bwhere + " address")
            if addr.version != vip.version:
                raise AddressError("%s address is %s but the vip %s is IPv%d; backends take the VIP's family."
                                   % (bwhere, addr, vip, vip.version))
            if addr == vip:
                raise AddressError("%s address is %s, the VIP itself; a backend must be another host."
                                   % (bwhere, addr))
            if str(addr) in addrs:
                raise AddressError("%s repeats the backend %s; list each backend once." % (bwhere, addr))
            addrs.add(str(addr))
            weight = be.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 65535:
                raise AddressError("%s weight is %r; give a whole number from 0 to 65535." % (bwhere, weight))
            state = be.get("state", "active")
            if state not in STATES:
                raise AddressError("%s state is %r; use active or draining." % (bwhere, state))
            if weight == 0 and state == "active":
                raise AddressError("%s has weight 0 with state active; give it a weight, or set state draining "
                                   "to take it out." % bwhere)
            hw = be.get("mac")
            if hw not in (None, ""):
                hw = mac(hw, bwhere + " mac")
            elif macs is not None:
                hw = (macs or {}).get(str(addr))
                if not hw and encap != "none":
                    raise AddressError("%s address %s (encap %s) has no next hop with a MAC in the balancer's "
                                       "neighbour table; give the next hop's mac, or make the router reachable from "
                                       "the balancer." % (bwhere, addr, encap))
                if not hw:
                    raise AddressError("%s address %s has no mac and the balancer's neighbour table has none for "
                                       "it; give its mac, or make it reachable from the balancer." % (bwhere, addr))
                hw = mac(hw, bwhere + " mac (resolved)")
            checked.append({"address": str(addr), "mac": hw, "weight": weight, "state": state})
        if not any(c["state"] == "active" for c in checked):
            raise AddressError("%s has no active backend; keep at least one active." % where)
        out.append({"vip": str(vip), "family": vip.version, "proto": proto, "proto_name": proto_name,
                    "port": number, "size": size, "index": n, "encap": encap, "backends": checked})
    return out


def _ids(service):
    """A stable id per backend of a service: 1 + index * 256 + a hash of the address, the next free one on a
    collision (addresses in sorted order, so the same set always gets the same ids); 0 names no backend."""
    ids, used = {}, set()
    for addr in sorted(b["address"] for b in service["backends"]):
        low = zlib.crc32(addr.encode()) % PER_SERVICE
        while low in used:
            low = (low + 1) % PER_SERVICE
        used.add(low)
        ids[addr] = 1 + service["index"] * PER_SERVICE + low
    return ids


def service_table(service):
    """(slots as backend ids, ids by address) of a checked service: its active backends only."""
    ids = _ids(service)
    active = [(b["address"], b["weight"]) for b in service["backends"] if b["state"] == "active"]
    return [ids[active[i][0]] for i in table(active, service["size"])], ids


def pack(slots):
    """A table as base64 of little-endian u32s, and its digest (sha256, first 16 hex digits)."""
    raw = struct.pack("<%dI" % len(slots), *slots)
    return base64.b64encode(raw).decode(), hashlib.sha256(raw).hexdigest()[:16]


def mapped(address):
    """An address as the program's 16-byte fields hold it: IPv4 as ::ffff:a.b.c.d."""
    addr = ipaddress.ip_address(address)
    return "::ffff:%s" % addr if addr.version == 4 else str(addr)


def unmap(address):
    """The address a 16-byte field holds, IPv4 back in dotted form."""
    addr = ipaddress.ip_address(address)
    return str(addr.ipv4_mapped) if addr.version == 6 and addr.ipv4_mapped else str(addr)


def unpack(packed):
    """The backend ids of a table packed by pack()."""
    raw = base64.b64decode(packed)
    return list(struct.unpack("<%dI" % (len(raw) // 4), raw))


def table_entries(table_info):
    """lb_maglev entries {slot index: backend id} of one service's table (from entries()["tables"])."""
    base = table_info["index"] * MAX_SIZE
    return {base + i: v for i, v in enumerate(unpack(table_info["table"]))}


def entries(services):
    """The map entries: lb_services (VIP, proto, port -> index, size), lb_backends (id -> address, MAC,
    weight, flags), and the tables per service (packed, with their digest)."""
    svc_entries, be_entries, tables = [], [], []
    for svc in services:
        slots, ids = service_table(svc)
        packed, digest = pack(slots)
        svc_entries.append({"key": {"addr": mapped(svc["vip"]), "port": svc["port"], "proto": svc["proto"]},
                            "value": {"index": svc["index"], "size": svc["size"]}})
        for b in svc["backends"]:
            be_entries.append({"key": ids[b["address"]], "value": {
                "addr": mapped(b["address"]), "mac": b["mac"], "weight": b["weight"], "service": svc["index"],
                "flags": FLAG_ACTIVE if b["state"] == "active" else FLAG_DRAINING,
                "encap": 0 if svc.get("encap", "none") == "none" else 1}})
        tables.append({"index": svc["index"], "vip": svc["vip"], "proto": svc["proto_name"], "port": svc["port"],
                       "size": svc["size"], "table": packed, "digest": digest,
                       "backends": {str(v): k for k, v in ids.items()}})
    return {"services": svc_entries, "backends": be_entries, "tables": tables}


def disruption(before, services):
    """What the new services move, per service: slots and share of flows from which backend to which.

    `before` is the content of the host's lb_backends map (decoded entries [{key, value}]) and lb_services (the
    sizes) as {"backends": [...], "services": [...]}; an empty one (first run) moves nothing."""
    old_backends = (before or {}).get("backends") or []
    old_services = {int(e["value"]["index"]): int(e["value"]["size"])
                    for e in (before or {}).get("services") or []}
    report = []
    for svc in services:
        if svc["index"] not in old_services:
            continue
        old = [e["value"] for e in old_backends if int(e["value"]["service"]) == svc["index"]
               and int(e["value"]["flags"]) == FLAG_ACTIVE]
        if not old:
            continue
        old_names = [unmap(v["addr"]) for v in old]
        old_slots = table([(n, int(v["weight"])) for n, v in zip(old_names, old)], old_services[svc["index"]])
        active = [(b["address"], b["weight"]) for b in svc["backends"] if b["state"] == "active"]
        new_slots = table(active, svc["size"])
        moves, moved = {}, 0
        if len(old_slots) == len(new_slots):
            for a, b in zip(old_slots, new_slots):
                src, dst = old_names[a], active[b][0]
                if src != dst:
                    moved += 1
                    moves[(src, dst)] = moves.get((src, dst), 0) + 1
        else:
            moved = len(new_slots)
        report.append({"service": "%s %s/%d" % (svc["vip"], svc["proto_name"], svc["port"]), "slots": moved,
                       "share": round(moved / float(svc["size"]), 4),
                       "moves": ["%s -> %s: %d slots (%.1f%%)" % (s, d, n, 100.0 * n / svc["size"])
                                 for (s, d), n in sorted(moves.items(), key=lambda kv: -kv[1])]})
    return report
