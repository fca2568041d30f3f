# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One input error and one wrapper for every filter; one name-or-number and one CIDR parser shared with the engine."""

from __future__ import annotations

import glob
import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.wirespeed.datapath.plugins.filter import addresses, l2, load_balancer, rollout
from ansible_collections.wirespeed.datapath.plugins.lookup.code_digest import LookupModule
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.types import codecs, parse
from ansible_collections.wirespeed.datapath.plugins.plugin_utils import _addresses, _intent, _l2, _maglev, _qos
from ansible_collections.wirespeed.datapath.plugins.plugin_utils._input import InputError

FILTERS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")


@pytest.mark.parametrize("call, message", [
    (lambda: addresses.address_check(["10.1.2.3/8"], "firewall_allow"),
     "firewall_allow item 1 is '10.1.2.3/8', which has host bits set; write the network as 10.0.0.0/8."),
    (lambda: addresses.protocol_number("tpc", "rule proto"),
     "rule proto is 'tpc', which is not a protocol; use one of %s or a number from 0 to 255."
     % ", ".join(codecs.PROTOCOLS)),
    (lambda: l2.l2_check("eth1"), None),
    (lambda: load_balancer.lb_services([{"vip": "192.0.2.10", "proto": "sctp", "port": 80, "backends": []}]),
     None),
    (lambda: rollout.rollout_batches([], 3), None),
])
def test_every_filter_fails_with_the_sentence_alone(call, message):
    with pytest.raises(AnsibleFilterError) as err:
        call()
    assert err.value.__cause__ is None and err.value.__suppress_context__  # the sentence once, no cause appended
    if message:
        assert err.value.message == message


def test_the_checks_raise_the_one_input_error():
    assert _addresses.AddressError is InputError and _l2.L2Error is InputError
    assert issubclass(InputError, ValueError)


def test_no_filter_file_translates_errors_itself():
    for path in glob.glob(os.path.join(FILTERS, "*.py")):
        with open(path) as fh:
            text = fh.read()
        assert "AnsibleFilterError" not in text and "Error as exc" not in text, path


@pytest.mark.parametrize("value, names, low, high, expected", [
    ("TCP ", codecs.PROTOCOLS, 0, 255, 6), ("17", codecs.PROTOCOLS, 0, 255, 17), (256, codecs.PROTOCOLS, 0, 255, None),
    (True, codecs.PROTOCOLS, 0, 255, None), ("tpc", codecs.PROTOCOLS, 0, 255, None), ("ef", _qos.DSCP_NAMES, 0, 63, 46),
    (64, _qos.DSCP_NAMES, 0, 63, None), ("icmp", _maglev.PROTOCOLS, None, None, 1),
    (6, _maglev.PROTOCOLS, None, None, None),
])
def test_one_name_or_number_parser(value, names, low, high, expected):
    assert parse.name_or_number(value, names, low, high) == expected


def test_the_filters_and_the_codecs_say_host_bits_alike():
    with pytest.raises(ValueError) as codec_err:
        codecs.CidrCodec(4).encode("10.1.2.3/8")
    with pytest.raises(InputError) as filter_err:
        _addresses.parse("10.1.2.3/8", "firewall_deny item 1")
    advice = "has host bits set; write the network as 10.0.0.0/8"
    assert str(codec_err.value) == "10.1.2.3/8 " + advice
    assert str(filter_err.value) == "firewall_deny item 1 is '10.1.2.3/8', which %s." % advice


def test_code_digest_is_a_lookup_of_the_collections_code():
    assert LookupModule().run([]) == [_intent.code_digest()] and len(_intent.code_digest()) == 64
