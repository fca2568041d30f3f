# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults of the host itself, on a host that boots systemd (tests/lab/nspawn.py) and is reached as `ops` with
become: the controller loses SSH in the middle of site.yml, and the host reboots (`systemctl reboot`) in the
middle of site.yml. Every wait is on an event: the module's process showing up on the host, or the run ending."""

import json
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from datapaths import write  # noqa: E402
from labplay import BIN, REPO, LabNet, booting_lab, playbook  # noqa: E402

SITE = os.path.join(REPO, "playbooks", "site.yml")
RELEASE = os.environ.get("WIRESPEED_LAB_RELEASE", "bookworm")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with booting_lab(tmp_path_factory, "hostfaults", 1, RELEASE) as fleet:
        yield fleet


def site_vars(lab, deny_ports, ssh_ports):
    data = {"firewall_interfaces": ["eth0"], "firewall_deny": [lab.peer["ip2"] + "/32"],
            "firewall_port_rules": [{"proto": "udp", "port": p} for p in deny_ports],
            "ssh_limiter_interfaces": ["eth0"], "ssh_limiter_ports": ssh_ports}
    os.makedirs(os.path.join(lab.dir, "group_vars"), exist_ok=True)
    with open(os.path.join(lab.dir, "group_vars", "lab.yml"), "w") as fh:
        json.dump(data, fh)


def programs(lab, host):
    """{name: prog id} of eth0's chain and the id of the root, read over SSH."""
    out = playbook(lab, write(lab, "read", [{"wirespeed.datapath.datapath_info": {"interfaces": ["eth0"]}}]))
    eth0 = out["Step 1"][host["name"]]["datapath"]["eth0"]
    return {e["name"]: e["prog"]["id"] for e in eth0["chain"]}, (eth0["xdp_prog"] or {}).get("id")


def _site_in_background(lab):
    """site.yml in the background, without pipelining: the module's process on the host then carries its name
    (AnsiballZ_<module>.py) for _module_started to find."""
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_TIMEOUT="5",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"))
    return subprocess.Popen([os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, SITE, "-e",
                             "ansible_pipelining=false"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _module_started(lab, host, run, module):
    """Wait until the module runs on the host (its AnsiballZ file in a python's command line), or the run ended
    first (then the test fails with the run's output): the event, not a guess of how long the run takes."""
    pattern = "python.* /.*AnsiballZ_[%s]%s[.]py" % (module[0], module[1:])
    while run.poll() is None:
        if lab.ssh(host, "pgrep -f '%s'" % pattern, timeout=30).stdout.split():
            return
        time.sleep(0.05)
    pytest.fail("site.yml ended before %s ran on the host: %s" % (module, run.stdout.read()[-3000:]))


def _quiet(lab, host, module):
    """Wait until no process of the module runs on the host any more (the cut-off run finished on its own)."""
    pattern = "python.* /.*AnsiballZ_[%s]%s[.]py" % (module[0], module[1:])
    deadline = time.monotonic() + 120
    while lab.ssh(host, "pgrep -f '%s'" % pattern, timeout=30).stdout.split():
        assert time.monotonic() < deadline, "%s still runs on the host 120 s after the cut" % module
        time.sleep(0.2)


def test_ssh_lost_in_the_middle_of_site_yml_leaves_each_program_old_or_new_and_the_chain_whole(lab):
    host = lab.hosts[0]
    site_vars(lab, [7001], [22])
    assert playbook(lab, SITE)["rc"] == 0
    old, root = programs(lab, host)
    site_vars(lab, [7001, 7000], [22, 2222])  # a change to the firewall's maps and the limiter's program
    run = _site_in_background(lab)
    try:
        _module_started(lab, host, run, "datapath_apply")
        lab.cut(host)  # the controller loses the host while the change is being applied
        out = run.communicate(timeout=300)[0]
    finally:
        lab.reconnect(host)
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode != 0 and "UNREACHABLE" in out
    _quiet(lab, host, "datapath_apply")
    now, now_root = programs(lab, host)
    assert now_root == root and set(now) == set(old)  # the root attached and every program in the chain
    net = LabNet(lab, host)
    assert net.udp(7001, 10) == 0  # both the old and the new firewall drop 7001: the chain filters
    again = playbook(lab, SITE)
    assert again["rc"] == 0 and net.udp(7000, 10) == 0
    assert playbook(lab, SITE)["stats"][host["name"]]["changed"] == 0


def test_a_host_that_reboots_in_the_middle_of_site_yml_boots_the_last_confirmed_datapath(lab):
    host = lab.hosts[0]
    # the datapath the SSH test leaves (so this first run has nothing to do after it), then a change back
    site_vars(lab, [7001, 7000], [22, 2222])
    assert playbook(lab, SITE)["rc"] == 0
    old = set(programs(lab, host)[0])
    site_vars(lab, [7001], [22])  # a change to the firewall's maps and the limiter's program
    run = _site_in_background(lab)
    try:
        _module_started(lab, host, run, "datapath_apply")
        lab.reboot(host["name"])  # systemctl reboot: the module is ended, the kernel forgets the datapath
        run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode != 0
    assert set(programs(lab, host)[0]) == old  # the confirmed datapath, restored at boot
    net = LabNet(lab, host)
    assert net.udp(7001, 10) == 0 and net.udp(7000, 10) == 0  # its port rules, not the half-applied change
    again = playbook(lab, SITE)
    assert again["rc"] == 0 and net.udp(7000, 10) == 10
