# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the traffic roles: rates, DSCP rules and connection limits, checked and turned into map entries."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _addresses, _qos


def _wrap(func):
    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _addresses.AddressError as exc:
            raise AnsibleFilterError(str(exc)) from None
    call.__name__ = func.__name__
    return call


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


class FilterModule:
    def filters(self):
        return {"rate_bps": rate_bps, "burst_bytes": burst_bytes, "egress_rules": egress_rules,
                "dscp_rules": dscp_rules, "conn_settings": conn_settings}
