# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Address lists as operators write them (inline or feed files), checked on the controller before any host changes."""

from __future__ import annotations

import ipaddress

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types import parse as _parse
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types.codecs import PROTOCOLS, PortRuleCodec
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._input import InputError

AddressError = InputError  # the filters' one input error (_input.py), under the name the address checks use


def kind_of(value):
    """What a value is, in the operator's words (Ansible hands strings over as its own tagged subclasses)."""
    if isinstance(value, str):
        return "the text %r (write it as a YAML list, or as a JSON list with -e '{...}')" % str(value)[:80]
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "the number %s" % value
    return "a %s" % type(value).__name__


def parse(text, where):
    """An ip_network from an address or CIDR; AddressError naming `where` otherwise."""
    if not isinstance(text, str):
        raise AddressError("%s is %s, which is not an address or CIDR string; quote it as '203.0.113.7' or "
                           "'192.0.2.0/24'." % (where, _quote(text)))
    text = text.strip()
    try:
        return _parse.network(text)
    except _parse.HostBits as exc:
        raise AddressError("%s is %r, which %s." % (where, text, exc.advice())) from None
    except ValueError:
        raise AddressError("%s is %s, which is not an IPv4 or IPv6 address or CIDR; fix or remove it."
                           % (where, _quote(text))) from None


def check_list(entries, variable):
    """The networks of an inline list; errors name the variable and the item's position."""
    if entries is None:
        return []
    if not isinstance(entries, (list, tuple)):
        raise AddressError("%s must be a list of addresses or CIDRs, not %s." % (variable, kind_of(entries)))
    return [parse(e, "%s item %d" % (variable, i + 1)) for i, e in enumerate(entries)]


MAX_LINE = 4096  # bytes: an address or CIDR with a comment fits many times over; a longer line is not a feed's


def _quote(value, limit=60):
    """repr() of a value, shortened: a hostile entry is named, not copied whole into the message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...' (%d characters)" % len(str(value))


def read_file(path):
    """The networks of a feed file: one per line; blank lines and # comments ignored; errors name file and line.
    Read line by line with a bounded line length, so a hostile file costs memory for its entries only."""
    out = []
    try:
        with open(path, "rb") as fh:
            number = 0
            while True:
                raw = fh.readline(MAX_LINE + 1)
                if not raw:
                    break
                number += 1
                where = "%s line %d" % (path, number)
                if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                    raise AddressError("%s is longer than %d bytes, which no address or CIDR is; fix or remove it."
                                       % (where, MAX_LINE))
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise AddressError("%s is not UTF-8 text (byte %d); fix or remove it." % (where, exc.start + 1)) \
                        from None
                if "\0" in line:
                    raise AddressError("%s holds a NUL byte; fix or remove it." % where)
                text = line.split("#", 1)[0].strip()
                if text:
                    out.append(parse(text, where))
    except OSError as exc:
        raise AddressError("the address file %s cannot be read (%s); check the path." % (path, exc.strerror)) from exc
    return out


def _net(value, where):
    return value if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else parse(value, where)


def split(networks):
    """Single addresses (v4, v6) apart from wider networks (net_v4, net_v6), as the programs' maps want them;
    and every entry as a CIDR by family (cidr_v4, cidr_v6), as LPM allow lists want them."""
    out = {"v4": [], "v6": [], "net_v4": [], "net_v6": [], "cidr_v4": [], "cidr_v6": []}
    seen = set()
    for item in networks:
        net = _net(item, "entry")
        if net in seen:
            continue
        seen.add(net)
        family = "v4" if net.version == 4 else "v6"
        out["cidr_" + family].append(str(net))
        if net.prefixlen == net.max_prefixlen:
            out[family].append(str(net.network_address))
        else:
            out["net_" + family].append(str(net))
    return out


def conflicts(deny, protected):
    """['<deny entry> covers <protected>'] for every deny network that contains a protected address or network."""
    found = []
    deny = [_net(d, "deny entry") for d in deny]
    for item in protected:
        p = _net(item, "protected entry")
        shown = p if p.prefixlen < p.max_prefixlen else p.network_address
        found.extend("%s covers %s" % (d, shown) for d in deny if d.version == p.version and d.overlaps(p))
    return found


def protocol(value, where):
    """A protocol number from a name or number."""
    number = _parse.name_or_number(value, PROTOCOLS, 0, 255)
    if number is None:
        raise AddressError("%s is %r, which is not a protocol; use one of %s or a number from 0 to 255."
                           % (where, value, ", ".join(PROTOCOLS)))
    return number


def port(value, where, zero=False):
    """A port number from 1 (or 0 when `zero`) to 65535."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not (0 if zero else 1) <= number <= 65535:
        raise AddressError("%s is %r, which is not a port; use 1 to 65535%s."
                           % (where, value, ", or 0 for the whole protocol" if zero else ""))
    return number


_PORT_RULE = PortRuleCodec()


def port_rules(rules, variable):
    """deny_ports keys ("tcp/8080", "icmp") from [{proto, port}] rules; errors name the variable and rule.

    The firewall's deny_ports is an LPM trie: "icmp" (port 0 or left out) covers the
    whole protocol, "tcp/8080" one port (key type proto_port).
    """
    out = []
    for i, rule in enumerate(rules or []):
        where = "%s rule %d" % (variable, i + 1)
        if not isinstance(rule, dict) or "proto" not in rule:
            raise AddressError("%s is %r; write it as {proto: tcp, port: 8080}." % (where, rule))
        checked = {"proto": protocol(rule["proto"], where + " proto"),
                   "port": port(rule.get("port", 0), where + " port", zero=True)}
        out.append(_PORT_RULE.text(_PORT_RULE.encode(checked)))  # the form bpf_map_entry shows
    return out


STEER_PORTS_MAX = 16  # per protocol: files/bpf/include/wirespeed/ports.h


def steer_rules(rules, variable):
    """{udp_ports, tcp_ports} of the af_xdp steering program from [{proto: udp|tcp, port}] rules; errors name the
    variable and rule."""
    if not isinstance(rules, (list, tuple)) or not rules:
        raise AddressError("%s is %r; give at least one rule such as {proto: udp, port: 4789}." % (variable, rules))
    out = {"udp_ports": [], "tcp_ports": []}
    for i, rule in enumerate(rules):
        where = "%s rule %d" % (variable, i + 1)
        if not isinstance(rule, dict) or "proto" not in rule or "port" not in rule:
            raise AddressError("%s is %r; write it as {proto: udp, port: 4789}." % (where, rule))
        number = protocol(rule["proto"], where + " proto")
        if number not in (6, 17):
            raise AddressError("%s proto is %r; AF_XDP steering matches tcp or udp by destination port."
                               % (where, rule["proto"]))
        listed = out["tcp_ports" if number == 6 else "udp_ports"]
        checked = port(rule["port"], where + " port")
        if checked not in listed:
            listed.append(checked)
        if len(listed) > STEER_PORTS_MAX:
            raise AddressError("%s has more than %d %s ports; steer at most %d ports per protocol."
                               % (variable, STEER_PORTS_MAX, "tcp" if number == 6 else "udp", STEER_PORTS_MAX))
    return out


def ports(values, variable):
    """Port numbers of a list; errors name the variable and item."""
    if not isinstance(values, (list, tuple)):
        raise AddressError("%s must be a list of ports, not %s." % (variable, kind_of(values)))
    return [port(v, "%s item %d" % (variable, i + 1)) for i, v in enumerate(values)]
