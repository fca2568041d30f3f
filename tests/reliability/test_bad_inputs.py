# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalogue of bad inputs: each one through the real entry point (a module task, or a role, run by
ansible-playbook over SSH against a lab host that runs a datapath), and each must (a) fail with one sentence
naming the offending input and (b) leave the datapath byte-identical: XDP and TC attachments, every pin and
every map's contents, every file of the state directory (tests/reliability/snapshot.py)."""

import base64
import os
import re
import sys

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import apply, keybuf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import snapshot  # noqa: E402
from datapaths import ROLE, TC, TEST_BPF, ZOO, baseline, write  # noqa: E402
from labplay import assert_once, failure, playbook, running_lab  # noqa: E402


def task(module, **args):
    return ("task", {"wirespeed.datapath." + module: args})


def role(name, **variables):
    return ("role", dict(variables, role_under_test=name))


def xdp(**args):
    return task("xdp_program", **dict({"interface": "eth0", "name": "zoo", "src": ZOO, "priority": 60}, **args))


def entry(**args):
    return task("xdp_map_entry", **dict({"interface": "eth0", "name": "zoo"}, **args))


def tc(**args):
    return task("tc_filter", **dict({"interface": "eth0", "direction": "ingress", "name": "tcdrop", "src": TC,
                                     "priority": 20, "config": {"drop_port": 7002}}, **args))


def corrupt_packed(as_keys=False):
    """A packed list of 1,000 addresses (as text, or as key bytes the way a feed travels) with one byte of its
    transfer changed."""
    addresses = ["198.51.%d.%d" % (100 + i // 250, i % 250) for i in range(1000)]
    packed = keybuf.pack_entries(addresses, "ipv4") if as_keys else apply.pack(addresses)
    data = bytearray(base64.b64decode(packed["data"]))
    data[len(data) // 2] ^= 0x01
    return dict(packed, data=base64.b64encode(bytes(data)).decode())


def fw(**variables):
    return role("firewall", **dict({"firewall_interfaces": ["eth0"]}, **variables))


# id: (entry point, pattern the one failure message must match exactly once)
CASES = {
    # xdp_program
    "xdp: interface that does not exist": (xdp(interface="eth9"), r"eth9"),
    "xdp: interface name with a slash": (xdp(interface="eth0/x"), r"interface 'eth0/x' is not an interface name"),
    "xdp: name with a slash": (xdp(name="a/b"), r"name 'a/b' must start with a letter or digit"),
    "xdp: name with ..": (xdp(name=".."), r"name '\.\.' must start with a letter or digit"),
    "xdp: src and object together": (xdp(object="/tmp/x.o"), r"src.*object|object.*src"),
    "xdp: neither src nor object": (task("xdp_program", interface="eth0", name="zoo"), r"src.*object|object.*src"),
    "xdp: src that does not exist": (xdp(src="/nonexistent/prog.bpf.c"), r"/nonexistent/prog\.bpf\.c"),
    "xdp: C that does not compile": (xdp(src=os.path.join(TEST_BPF, "broken_syntax.bpf.c")),
                                     r"compile of \S*broken_syntax\.bpf\.c failed"),
    "xdp: object that is not BPF": (xdp(src=None, object=os.path.join(TEST_BPF, "maps_zoo.bpf.c")),
                                    r"\S*maps_zoo\.bpf\.c is not a loadable BPF object"),
    "xdp: program the verifier rejects": (xdp(src=os.path.join(TEST_BPF, "verifier_reject.bpf.c")),
                                          r"verifier_reject\.bpf\.c"),
    "xdp: section that does not exist": (xdp(program="nosuch"), r"nosuch"),
    "xdp: unknown mode": (xdp(mode="turbo"), r"turbo"),
    "xdp: priority out of range": (xdp(priority=-1), r"priority -1 must be an integer from 0 to 2147483647"),
    "xdp: unknown config key": (xdp(config={"nosuch_knob": 1}), r"nosuch_knob"),
    "xdp: pin_path outside bpffs": (xdp(pin_path="/tmp/wspins"), r"/tmp/wspins"),
    "xdp: unknown state": (xdp(state="gone"), r"gone"),
    # datapath_apply: a packed list that arrives damaged (one byte of it changed on the way)
    "apply: a corrupt packed transfer": (
        task("datapath_apply", programs=[{"name": "zoo", "interface": "eth0", "src": ZOO, "priority": 60, "maps": [
            {"map": "hash_v4", "key_type": "ipv4", "exclusive": True, "packed_entries": corrupt_packed()}]}]),
        r"the packed entries of map hash_v4 of zoo on eth0 did not arrive whole"),
    "apply: a corrupt packed transfer of key bytes": (
        task("datapath_apply", programs=[{"name": "zoo", "interface": "eth0", "src": ZOO, "priority": 60, "maps": [
            {"map": "hash_v4", "key_type": "ipv4", "exclusive": True, "packed_entries": corrupt_packed(True)}]}]),
        r"the packed entries of map hash_v4 of zoo on eth0 did not arrive whole"),
    # xdp_map_entry
    "map: program that is not deployed": (entry(name="ghost", map="hash_v4", key="1"), r"ghost"),
    "map: map that does not exist": (entry(map="nosuch_map", key="1"), r"nosuch_map"),
    "map: map name with ..": (entry(map="../firewall/maps/deny_v4", key="1"), r"\.\./firewall/maps/deny_v4"),
    "map: program name with ..": (entry(name="../eth0/firewall", map="deny_v4", key="1"), r"\.\./eth0/firewall"),
    "map: malformed IPv4 key": (entry(map="hash_v4", key_type="ipv4", entries=["192.0.2.300"]), r"192\.0\.2\.300"),
    "map: IPv6 key for an IPv4 map": (entry(map="hash_v4", key_type="ipv6", entries=["2001:db8::1"]),
                                      r"2001:db8::1|ipv6"),
    "map: CIDR with host bits": (entry(map="lpm4", entries=["10.1.2.3/8"]), r"10\.1\.2\.3/8"),
    "map: value with an unknown field": (entry(map="flows", entries=[{"key": {"saddr": "192.0.2.1", "dport": 53,
                                                                              "proto": 17},
                                                                      "value": {"rate": 1, "nosuch": 2}}]),
                                         r"has no field 'nosuch'"),
    "map: value out of range": (entry(map="limits", entries=[{"key": 0, "value": {"rate": 1, "burst": 1,
                                                                                  "enabled": 300}}]),
                                r"field 'enabled': 300 does not fit __u8"),
    "map: more entries than the map holds": (entry(map="hash_v4", key_type="ipv4",
                                                   entries=["192.0.2.%d" % i for i in range(1, 11)]),
                                             r"\b10\b.*\b8\b|\b8\b.*\b10\b"),
    "map: index beyond an array": (entry(map="limits", entries=[{"key": 9, "value": {"rate": 1}}]), r"\b9\b"),
    "map: unknown key type": (entry(map="hash_v4", key_type="ipv5", entries=["1"]), r"ipv5"),
    "map: the same map twice in maps": (
        entry(maps=[{"map": "hash_v4", "entries": []}, {"map": "hash_v4", "entries": []}]),
        r"maps names map hash_v4 twice"),
    "map: entries that are not a list": (entry(map="hash_v4", key_type="ipv4", entries="192.0.2.1"),
                                         r"entries"),
    # tc_filter
    "tc: unknown direction": (tc(direction="sideways"), r"sideways"),
    "tc: interface that does not exist": (tc(interface="eth9"), r"eth9"),
    "tc: name with a slash": (tc(name="tc/drop"), r"name 'tc/drop' must start with a letter or digit"),
    "tc: priority out of range": (tc(priority=70000), r"70000"),
    "tc: program the verifier rejects": (tc(src=os.path.join(TEST_BPF, "verifier_reject.bpf.c")),
                                         r"verifier_reject\.bpf\.c"),
    # datapath_checkpoint / datapath_info / datapath_boot
    "checkpoint: confirm_timeout on commit": (task("datapath_checkpoint", step="commit", confirm_timeout=30),
                                              r"confirm_timeout goes with step=begin only \(got step=commit\)"),
    "checkpoint: confirm_timeout of 0": (task("datapath_checkpoint", step="begin", confirm_timeout=0),
                                         r"confirm_timeout 0 must be a whole number of seconds"),
    "checkpoint: unknown step": (task("datapath_checkpoint", step="undo"), r"undo"),
    "checkpoint: rollback to a date": (task("datapath_checkpoint", step="rollback", rollback_to="yesterday"),
                                       r"yesterday"),
    "info: interface that does not exist": (task("datapath_info", interfaces=["eth9"]), r"eth9"),
    "boot: unit directory that is not a directory": (task("datapath_boot", unit_dir="/etc/hostname"),
                                                     r"/etc/hostname"),
    # roles (their preflight, before any change)
    "firewall: unknown interface": (fw(firewall_interfaces=["eth9"]),
                                    r"firewall_interfaces names eth9, which does not exist on lab1"),
    "firewall: malformed address": (fw(firewall_deny=["192.0.2.0/24", "203.0.113.300"]),
                                    r"firewall_deny item 2 is '203\.0\.113\.300', which is not an IPv4 or IPv6"),
    "firewall: host bits in the allow list": (fw(firewall_allow=["10.1.2.3/8"]),
                                              r"firewall_allow item 1 is '10\.1\.2\.3/8', which has host bits set"),
    "firewall: deny covers the controller": (fw(firewall_deny=["198.18.0.0/15"]),
                                             r"the deny entry 198\.18\.0\.0/15 covers .* \(the address Ansible "
                                             r"connects from\)"),
    "firewall: deny covers a management network": (fw(firewall_deny=["10.0.0.0/8"],
                                                      firewall_management_networks=["10.9.0.0/16"]),
                                                   r"the deny entry 10\.0\.0\.0/8 covers 10\.9\.0\.0/16"),
    "firewall: port out of range": (fw(firewall_port_rules=[{"proto": "tcp", "port": 70000}]),
                                    r"firewall_port_rules rule 1 port is 70000, which is not a port"),
    "firewall: unknown protocol": (fw(firewall_port_rules=[{"proto": "sctpx", "port": 80}]), r"sctpx"),
    "firewall: priority that is not a number": (fw(firewall_priority="first"), r"firewall_priority"),
    "firewall: deny list given as text": (fw(firewall_deny="192.0.2.1"),
                                          r"firewall_deny must be a list of addresses or CIDRs, not the text"),
    "firewall: feed file that does not exist": (fw(firewall_deny_files=["/nonexistent/feed.txt"]),
                                                r"/nonexistent/feed\.txt"),
    "ssh_limiter: port 0": (role("ssh_limiter", ssh_limiter_interfaces=["eth0"], ssh_limiter_ports=[22, 0]),
                            r"ssh_limiter_ports item 2 is 0, which is not a port; use 1 to 65535"),
    "ssh_limiter: too many ports": (role("ssh_limiter", ssh_limiter_interfaces=["eth0"],
                                         ssh_limiter_ports=list(range(2000, 2017))),
                                    r"ssh_limiter_ports has 17 ports; give at most 16"),
    "ssh_limiter: mutually exclusive options": (role("ssh_limiter", ssh_limiter_interfaces=["eth0"],
                                                     ssh_limiter_all_ports=True, ssh_limiter_ports=[22]),
                                                r"ssh_limiter_all_ports and ssh_limiter_ports are mutually "
                                                r"exclusive"),
    "mirror: target is a source": (role("mirror", mirror_interfaces=["eth0"], mirror_target="eth0"),
                                   r"mirror_target eth0 is also in mirror_interfaces"),
    "mirror: sample rate 0": (role("mirror", mirror_interfaces=["eth0"], mirror_target="mon0", mirror_sample_rate=0),
                              r"mirror_sample_rate is 0; give 1 \(every packet\) or more"),
    "mirror: target that does not exist": (role("mirror", mirror_interfaces=["eth0"], mirror_target="ids9"),
                                           r"mirror_interfaces or mirror_target names ids9, which does not exist"),
    "wireguard_filter: port out of range": (role("wireguard_filter", wireguard_filter_interfaces=["eth0"],
                                                 wireguard_filter_ports=[51820, 65536]), r"65536"),
    "mirror: too many ports": (role("mirror", mirror_interfaces=["eth0"], mirror_target="mon0",
                                    mirror_ports=list(range(2000, 2017))),
                               r"mirror_ports has 17 ports; give at most 16"),
    "egress_ratelimit: a rate in bytes per second": (
        role("egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
             egress_ratelimit_rules=[{"destination": "192.0.2.0/24", "rate": "10mbps"}]),
        r"egress_ratelimit_rules rule 1 rate is '10mbps', which is not a rate"),
    "egress_ratelimit: a negative rate": (
        role("egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
             egress_ratelimit_rules=[{"destination": "192.0.2.0/24", "rate": "1mbit"},
                                     {"destination": "2001:db8::/32", "rate": -1}]),
        r"egress_ratelimit_rules rule 2 rate is -1, which is not a rate"),
    "egress_ratelimit: a rate of 0": (
        role("egress_ratelimit", egress_ratelimit_interfaces=["eth0"], egress_ratelimit_default_rate=0),
        r"egress_ratelimit_default_rate is 0, which is no rate at all"),
    "egress_ratelimit: a burst under one frame": (
        role("egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
             egress_ratelimit_rules=[{"destination": "192.0.2.0/24", "rate": "1mbit", "burst": 1000}]),
        r"egress_ratelimit_rules rule 1 burst is 1000, which is less than one full frame"),
    "egress_ratelimit: a destination with host bits": (
        role("egress_ratelimit", egress_ratelimit_interfaces=["eth0"],
             egress_ratelimit_rules=[{"destination": "192.0.2.1/24", "rate": "1mbit"}]),
        r"egress_ratelimit_rules rule 1 destination is '192\.0\.2\.1/24', which has host bits set"),
    "dscp_marking: an unknown DSCP name": (
        role("dscp_marking", dscp_marking_interfaces=["eth0"],
             dscp_marking_rules=[{"proto": "udp", "port": 5060, "dscp": "AF51"}]),
        r"dscp_marking_rules rule 1 dscp is 'AF51', which is not a DSCP"),
    "dscp_marking: a DSCP over 63": (
        role("dscp_marking", dscp_marking_interfaces=["eth0"],
             dscp_marking_rules=[{"proto": "udp", "port": 5060, "dscp": 64}]),
        r"dscp_marking_rules rule 1 dscp is 64, which is not a DSCP"),
    "dscp_marking: a reversed port range": (
        role("dscp_marking", dscp_marking_interfaces=["eth0"],
             dscp_marking_rules=[{"proto": "udp", "port": "2000-1000", "dscp": "EF"}]),
        r"dscp_marking_rules rule 1 port is '2000-1000', a reversed range"),
    "dscp_marking: a port range beyond 65535": (
        role("dscp_marking", dscp_marking_interfaces=["eth0"],
             dscp_marking_rules=[{"proto": "tcp", "port": "1000-70000", "dscp": "EF"}]),
        r"dscp_marking_rules rule 1 port is '1000-70000', which is not a port range"),
    "dscp_marking: overlapping rules": (
        role("dscp_marking", dscp_marking_interfaces=["eth0"],
             dscp_marking_rules=[{"proto": "udp", "port": "5000-5100", "dscp": "EF"},
                                 {"proto": "udp", "port": 5060, "dscp": "CS3"}]),
        r"dscp_marking_rules rule 2 \(udp port 5060, DSCP 24\) overlaps rule 1, which sets DSCP 46"),
    "conn_limiter: a limit of 0": (
        role("conn_limiter", conn_limiter_interfaces=["eth0"], conn_limiter_max_new_per_second=0),
        r"conn_limiter_max_new_per_second is 0; give a whole number from 1 to 1000000000"),
    "conn_limiter: a negative burst": (
        role("conn_limiter", conn_limiter_interfaces=["eth0"], conn_limiter_burst=-1),
        r"conn_limiter_burst is -1; give a whole number from 0 to 4294967295"),
    "conn_limiter: a malformed allow entry": (
        role("conn_limiter", conn_limiter_interfaces=["eth0"], conn_limiter_allow=["10.0.0.300"]),
        r"conn_limiter_allow item 1 is '10\.0\.0\.300', which is not an IPv4 or IPv6"),
    "af_xdp: a queue the interface does not have": (
        role("af_xdp", af_xdp_interfaces=["eth0"], af_xdp_rules=[{"proto": "udp", "port": 7400}],
             af_xdp_queues=[0, 3]),
        r"af_xdp_queues names queue 3, which eth0 on \S+ does not have \(it has 1 RX queue, 0 to 0\)"),
    "af_xdp: a protocol without ports": (
        role("af_xdp", af_xdp_interfaces=["eth0"], af_xdp_rules=[{"proto": "icmp", "port": 1}]),
        r"af_xdp_rules rule 1 proto is 'icmp'; AF_XDP steering matches tcp or udp"),
    "af_xdp: a port out of range": (
        role("af_xdp", af_xdp_interfaces=["eth0"], af_xdp_rules=[{"proto": "udp", "port": 0}]),
        r"af_xdp_rules rule 1 port is 0, which is not a port"),
    "af_xdp: an interface that does not exist": (
        role("af_xdp", af_xdp_interfaces=["eth7"], af_xdp_rules=[{"proto": "udp", "port": 7400}]),
        r"af_xdp_interfaces names eth7, which does not exist"),
    "af_xdp: a group the host does not have": (
        role("af_xdp", af_xdp_interfaces=["eth0"], af_xdp_rules=[{"proto": "tcp", "port": 9000}],
             af_xdp_group="no-such-group-ws"),
        r"af_xdp_group is no-such-group-ws, which is not a group"),
}
FEED_CASES = {
    # feed files with hostile content: named by file and line, read with bounded memory
    "feed: a non-UTF-8 line": (b"192.0.2.1\n\xff\xfe203.0.113.9\n", r"feed\.txt line 2"),
    "feed: a NUL byte": (b"192.0.2.1\n203.0.113.\x009\n", r"feed\.txt line 2"),
    "feed: a line of a megabyte": (b"192.0.2.1\n" + b"1" * (1 << 20) + b"\n", r"feed\.txt line 2"),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory, "reliability", 1) as fleet:
        baseline(fleet)
        fleet.moving = snapshot.volatile(fleet, fleet.hosts[0])  # maps the programs write while packets flow
        fleet.last = None  # the snapshot after the last case, when that case changed nothing
        yield fleet


def before_case(lab, host):
    """The snapshot before a case: the previous case's snapshot after it, when that case passed (it proved the
    host unchanged since its own before), else a new reading."""
    earlier, lab.last = lab.last, None
    return earlier or snapshot.before(lab, host, lab.moving)


def run_case(lab, kind, body, name):
    if kind == "role":
        return playbook(lab, ROLE, **body)
    args = {m: {k: v for k, v in a.items() if v is not None} for m, a in body.items()}
    return playbook(lab, write(lab, name, [args]))


def check_message(message):
    """One sentence for a person: one line, no traceback, no temporary path, no Python type name. (A role's
    argument spec is checked by Ansible itself, which puts its own heading line first.)"""
    message = message.replace("Validation of arguments failed:\n", "")
    assert "\n" not in message.strip() and "Traceback" not in message, message
    assert "/.ansible/tmp" not in message and "AnsiballZ" not in message, message
    assert not re.search(r"\b(NoneType|_Ansible\w+|dict_keys|KeyError|TypeError)\b", message), message


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_input_names_itself_and_leaves_the_datapath_byte_identical(lab, case):
    (kind, body), pattern = CASES[case]
    host = lab.hosts[0]
    before = before_case(lab, host)
    out = run_case(lab, kind, body, case)
    after, now = snapshot.after(lab, host, before)
    assert out["rc"] != 0 and out["stats"][host["name"]]["changed"] == 0, out["stats"]
    message = failure(out)
    assert_once(pattern, message)
    check_message(message)
    assert after == {}
    lab.last = now


@pytest.mark.parametrize("case", sorted(FEED_CASES))
def test_a_hostile_feed_file_is_named_by_line_and_leaves_the_datapath(lab, case, tmp_path):
    content, pattern = FEED_CASES[case]
    feed = tmp_path / "feed.txt"
    feed.write_bytes(content)
    host = lab.hosts[0]
    before = before_case(lab, host)
    out = playbook(lab, ROLE, role_under_test="firewall", firewall_interfaces=["eth0"],
                   firewall_deny_files=[str(feed)])
    after, now = snapshot.after(lab, host, before)
    assert out["rc"] != 0
    message = failure(out)
    assert_once(pattern, message)
    check_message(message)
    assert len(message) < 600, "the message quotes the whole hostile line: %d characters" % len(message)
    assert after == {}
    lab.last = now


def test_the_catalogue_is_complete():
    assert len(CASES) + len(FEED_CASES) >= 40
