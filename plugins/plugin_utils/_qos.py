# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Rates, DSCP values and port ranges as operators write them, checked on the controller and turned into the
map entries of egress_ratelimit and dscp_marking."""

from __future__ import annotations

import re

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types.parse import name_or_number
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._addresses import (
    AddressError,
    kind_of,
    parse,
    port,
    protocol,
)

DEFAULT_BURST = 256 * 1024
FRAME = 1514  # one full Ethernet frame at MTU 1500: the smallest burst that lets a packet through
UNITS = {"bit": 1, "kbit": 10 ** 3, "mbit": 10 ** 6, "gbit": 10 ** 9, "tbit": 10 ** 12}
_RATE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
DSCP_NAMES = dict({"cs%d" % i: i * 8 for i in range(8)}, df=0, be=0, le=1, ef=46, va=44,
                  **{"af%d%d" % (c, d): c * 8 + d * 2 for c in range(1, 5) for d in range(1, 4)})


def rate(value, where):
    """Bits per second from 10mbit, 500kbit, 2gbit or a plain number of bits per second (at least 1)."""
    found = _RATE.match(str(value)) if not isinstance(value, bool) and isinstance(value, (int, float, str)) else None
    unit = found.group(2).lower() if found else ""
    if not found or (unit and unit not in UNITS):
        raise AddressError("%s is %r, which is not a rate; write it like 10mbit, 500kbit, 2gbit or a number of "
                           "bits per second." % (where, value))
    bits = int(float(found.group(1)) * UNITS[unit or "bit"])
    if bits < 1:
        raise AddressError("%s is %r, which is no rate at all; give at least 1 bit per second, or remove the rule."
                           % (where, value))
    return bits


def burst(value, where, bits):
    """Bytes of burst; default: 100 ms at the rate, at least DEFAULT_BURST (what TCP with segmentation
    offload needs: a sender hands over up to 64 KiB at once, and a bucket smaller than a few of those
    drops whole trains of segments, which TCP answers with timeouts)."""
    if value is None or value == "":
        return max(bits // 8 // 10, DEFAULT_BURST)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or number < FRAME:
        raise AddressError("%s is %r, which is less than one full frame; give at least %d bytes."
                           % (where, value, FRAME))
    if number > 0xFFFFFFFF:
        raise AddressError("%s is %r; give at most 4294967295 bytes." % (where, value))
    return number


def egress_rules(rules, variable):
    """rules_v4 and rules_v6 entries ({key: CIDR, value: {rate, burst, per, id}}) of egress_ratelimit."""
    if not isinstance(rules, (list, tuple)):
        raise AddressError("%s must be a list of {destination, rate} rules, not %s."
                           % (variable, kind_of(rules)))
    out, seen = {"v4": [], "v6": []}, {}
    for i, rule in enumerate(rules):
        where = "%s rule %d" % (variable, i + 1)
        if not isinstance(rule, dict) or "destination" not in rule or "rate" not in rule:
            raise AddressError("%s is %r; write it as {destination: 192.0.2.0/24, rate: 10mbit}." % (where, rule))
        unknown = sorted(set(rule) - {"destination", "rate", "burst", "per"})
        if unknown:
            raise AddressError("%s has %r, which is not a rule field; use destination, rate, burst and per."
                               % (where, unknown[0]))
        net = parse(rule["destination"], where + " destination")
        bits = rate(rule["rate"], where + " rate")
        per = rule.get("per", "address")
        if per not in ("address", "rule"):
            raise AddressError("%s per is %r; give address (a budget per destination) or rule (one shared)."
                               % (where, per))
        value = {"rate": bits, "burst": burst(rule.get("burst"), where + " burst", bits),
                 "per": 0 if per == "address" else 1, "id": i + 1}
        if net in seen:
            raise AddressError("%s repeats destination %s of rule %d; give each network one rule."
                               % (where, net, seen[net]))
        seen[net] = i + 1
        out["v4" if net.version == 4 else "v6"].append({"key": str(net), "value": value})
    return out


def dscp(value, where):
    """A DSCP number from a name (EF, AF41, CS6, ...) or 0 to 63."""
    number = name_or_number(value, DSCP_NAMES, 0, 63)
    if number is None:
        raise AddressError("%s is %r, which is not a DSCP; use a name like EF, AF41 or CS6, or 0 to 63."
                           % (where, value))
    return number


def port_range(value, where):
    """(low, high) from 5060 or "16384-32767"."""
    text = str(value).strip()
    low, sep, high = text.partition("-")
    if not sep:
        first = last = port(value, where)
    else:
        try:
            first, last = port(low, where), port(high, where)
        except AddressError:
            raise AddressError("%s is %r, which is not a port range; write it as low-high, each 1 to 65535."
                               % (where, value)) from None
    if last < first:
        raise AddressError("%s is %r, a reversed range; write it low-high, as %d-%d." % (where, value, last, first))
    return first, last


def prefixes(low, high):
    """(port, bits) blocks covering low..high exactly, as an LPM trie keeps a range."""
    out = []
    while low <= high:
        size = low & -low if low else 1 << 16
        while low + size - 1 > high:
            size >>= 1
        out.append((low, 16 - size.bit_length() + 1))
        low += size
    return out


SIDES = {"destination": (0,), "source": (1,), "either": (0, 1)}


def dscp_rules(rules, variable):
    """{egress: [...], ingress: [...]} entries of dscp_marking's rules map, checked; overlapping rules
    with different DSCP values for the same protocol, direction and port are refused."""
    if not isinstance(rules, (list, tuple)):
        raise AddressError("%s must be a list of {proto, port, dscp} rules, not %s."
                           % (variable, kind_of(rules)))
    out, kept = {"egress": [], "ingress": []}, []
    for i, rule in enumerate(rules):
        where = "%s rule %d" % (variable, i + 1)
        if not isinstance(rule, dict) or not {"proto", "port", "dscp"} <= set(rule):
            raise AddressError("%s is %r; write it as {proto: udp, port: 5060, dscp: EF}." % (where, rule))
        unknown = sorted(set(rule) - {"proto", "port", "dscp", "direction", "match"})
        if unknown:
            raise AddressError("%s has %r, which is not a rule field; use proto, port, dscp, direction and match."
                               % (where, unknown[0]))
        proto = protocol(rule["proto"], where + " proto")
        if proto not in (6, 17):
            raise AddressError("%s proto is %r; DSCP rules match tcp or udp ports." % (where, rule["proto"]))
        low, high = port_range(rule["port"], where + " port")
        value = dscp(rule["dscp"], where + " dscp")
        direction = rule.get("direction", "egress")
        if direction not in ("egress", "ingress", "both"):
            raise AddressError("%s direction is %r; give egress, ingress or both." % (where, direction))
        match = rule.get("match", "either")
        if match not in SIDES:
            raise AddressError("%s match is %r; give destination, source or either (port)." % (where, match))
        directions = ("egress", "ingress") if direction == "both" else (direction,)
        for other_i, other in kept:
            if (other["proto"] == proto and other["dscp"] != value and set(other["dirs"]) & set(directions)
                    and set(other["sides"]) & set(SIDES[match]) and other["low"] <= high and low <= other["high"]):
                raise AddressError("%s (%s port %s, DSCP %d) overlaps rule %d, which sets DSCP %d; give each port "
                                   "one DSCP." % (where, rule["proto"], rule["port"], value, other_i + 1,
                                                  other["dscp"]))
        kept.append((i, {"proto": proto, "dscp": value, "dirs": directions, "sides": SIDES[match], "low": low,
                         "high": high}))
        for d in directions:
            for side in SIDES[match]:
                for start, bits in prefixes(low, high):
                    out[d].append({"key": {"prefixlen": 16 + bits, "proto": proto, "side": side, "port": start},
                                   "value": value})
    return out


def conn_settings(max_new, burst_value, idle, variable_prefix):
    """The checked numbers of conn_limiter: {interval_ns, burst, udp_idle_ns}."""
    out = {}
    for name, value, low, high in (("max_new_per_second", max_new, 1, 10 ** 9), ("burst", burst_value, 0,
                                                                                 0xFFFFFFFF),
                                   ("udp_timeout", idle, 1, 86400)):
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if isinstance(value, bool) or number is None or not low <= number <= high or str(value).strip() != str(
                number):
            raise AddressError("%s_%s is %r; give a whole number from %d to %d." % (variable_prefix, name, value,
                                                                                    low, high))
        out[name] = number
    return {"interval_ns": 10 ** 9 // out["max_new_per_second"], "burst": out["burst"],
            "udp_idle_ns": out["udp_timeout"] * 10 ** 9}
