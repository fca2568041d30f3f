# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the roles' lists: addresses (check, split, find entries covering protected ones), ports, protocols;
rates, DSCP rules and connection limits (checked and turned into map entries)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _addresses, _capacity, _qos


def _wrap(func):
    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (_addresses.AddressError, _capacity.CapacityError) as exc:
            # the sentence is the whole message: Ansible appends a chained cause's text (and its cause's),
            # which printed it twice, then the ipaddress wording of the same fault
            raise AnsibleFilterError(str(exc)) from None
    call.__name__ = func.__name__
    return call


@_wrap
def address_check(entries, variable="the list"):
    """The entries as canonical strings; fails naming the variable and item of the first bad one."""
    return [str(n) for n in _addresses.check_list(entries, variable)]


@_wrap
def address_split(entries):
    """{v4, v6, net_v4, net_v6}: single addresses apart from networks, duplicates dropped."""
    return _addresses.split(entries or [])


@_wrap
def address_conflicts(deny, protected):
    """['<deny entry> covers <address>'] for each protected address or network a deny entry would cut off."""
    return _addresses.conflicts(deny or [], [p for p in (protected or []) if p])


@_wrap
def port_rules(rules, variable="the port rules"):
    """Keys of the firewall's deny_ports map ("tcp/8080", "icmp") from [{proto, port}] rules, checked."""
    return _addresses.port_rules(rules, variable)


@_wrap
def steer_rules(rules, variable="the rules"):
    """{udp_ports, tcp_ports} for the af_xdp steering program; fails naming the variable and rule."""
    return _addresses.steer_rules(rules, variable)


@_wrap
def port_check(values, variable="the ports"):
    """The ports as integers; fails naming the variable and item of one out of 1..65535."""
    return _addresses.ports(values, variable)


@_wrap
def protocol_number(value, variable="the protocol"):
    """A protocol number from a name (tcp, udp, icmp...) or number; C(any) is 0."""
    return 0 if value in (None, "any") else _addresses.protocol(value, variable)


@_wrap
def rate_bps(value, variable="the rate"):
    """Bits per second from 10mbit, 500kbit, 2gbit or a number; fails naming the variable."""
    return _qos.rate(value, variable)


@_wrap
def burst_bytes(value, rate, variable="the burst"):
    """Bytes of burst for a rate in bits per second (default when empty); fails naming the variable."""
    return _qos.burst(value, variable, rate)


@_wrap
def egress_rules(rules, variable="the rules"):
    """{v4, v6} entries of egress_ratelimit's rules_v4/rules_v6 maps."""
    return _qos.egress_rules(rules, variable)


@_wrap
def dscp_rules(rules, variable="the rules"):
    """{egress, ingress} entries of dscp_marking's rules map."""
    return _qos.dscp_rules(rules, variable)


@_wrap
def conn_settings(max_new, burst, idle, variable_prefix="conn_limiter"):
    """{interval_ns, burst, udp_idle_ns} of conn_limiter, checked."""
    return _qos.conn_settings(max_new, burst, idle, variable_prefix)


@_wrap
def map_capacity(count, floor, explicit=0, variable="capacity", what="entries"):
    """max_entries for a role's list map: explicit (refusing a count above it), else the next power of two at or
    above 1.25 x count, never below floor."""
    return _capacity.capacity(count, floor, explicit, variable, what)


class FilterModule:
    def filters(self):
        return {"address_check": address_check, "address_split": address_split,
                "address_conflicts": address_conflicts, "port_rules": port_rules, "port_check": port_check,
                "steer_rules": steer_rules,
                "protocol_number": protocol_number, "rate_bps": rate_bps, "burst_bytes": burst_bytes,
                "egress_rules": egress_rules, "dscp_rules": dscp_rules, "conn_settings": conn_settings,
                "map_capacity": map_capacity}
