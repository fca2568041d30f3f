# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host that ran collection 0.1.0 upgrades: the 0.1.0 engine (taken from git) deploys and checkpoints,
then this engine reads its record and checkpoints, recognises what runs (changed=false) and rolls back."""

import json
import os
import subprocess
import sys
import tarfile

from conftest import BPF, tc_hook
from netlab import netns

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import checkpoint, hooks, info
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.record.store import StateStore

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELEASE_0_1_0 = "dcbe85486c37790caef856ef97ec62f215064581"  # the last commit with the 0.1.0 engine

OLD_RUN = r"""
import ctypes, json, os, sys
a = json.loads(sys.argv[1])
# into the dut's network namespace only (`ip netns exec` would also give a private /sys, hiding bpffs)
fd = os.open("/run/netns/" + a["netns"], os.O_RDONLY)
assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import mapsync, snapshot, tc, xdp
xdp.deploy(xdp.XdpRequest(a["ifname"], "dp", object_path=a["drop_port"], root_object=a["root"],
                          config={"drop_port": 7000}, priority=10, state_dir=a["state"]))
tc.deploy(tc.TcRequest(a["ifname"], "ingress", "tcdp", object_path=a["tc_drop_port"],
                       config={"drop_port": 7002}, priority=5, state_dir=a["state"]))
snapshot.begin(a["state"])
xdp.deploy(xdp.XdpRequest(a["ifname"], "bl", object_path=a["blocklist"], root_object=a["root"], priority=20,
                          state_dir=a["state"]))
mapsync.sync(a["pin_root"] + "/bl/maps/blocklist", entries=[a["peer_ip"]], key_type="ipv4", exclusive=True)
snapshot.commit(a["state"])
"""


def old_engine(tmp_path):
    """The 0.1.0 engine as an importable collection, out of this repository's history."""
    root = tmp_path / "old" / "ansible_collections" / "wirespeed" / "datapath"
    root.mkdir(parents=True)
    archive = tmp_path / "old.tar"
    subprocess.run(["git", "-C", REPO, "archive", "-o", str(archive), RELEASE_0_1_0, "plugins/module_utils"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(root)
    return str(tmp_path / "old")


def as_0_1_0_built_them(objects, tmp_path):
    """Today's root and drop_port the way 0.1.0 compiled them: a single-buffer root alone in its object and the
    program in a plain `xdp` section (0.1.0 loads whatever the section says; it knows no xdp.frags)."""
    out = {}
    for key, src, edits in (("root", os.path.join(BPF, "wirespeed_root.bpf.c"), [(FRAGS_ROOT, "")]),
                            ("drop_port", os.path.join(BPF, "examples", "drop_port.bpf.c"),
                             [('SEC("xdp.frags")', 'SEC("xdp")')])):
        with open(src) as fh:
            text = fh.read()
        for old, new in edits:
            assert old in text, "%s no longer holds %r: update this test" % (src, old)
            text = text.replace(old, new)
        path = tmp_path / ("old_" + os.path.basename(src))
        path.write_text(text)
        out[key] = objects["build"](str(path))
    return out


FRAGS_ROOT = """SEC("xdp.frags")
int wirespeed_frags(struct xdp_md *ctx)
{
\treturn ws_chain_next(ctx);
}
"""


def test_state_written_by_0_1_0_is_read_recognised_and_rolled_back(dut, objects, tmp_path):
    old = old_engine(tmp_path)
    args = {"netns": dut.dut, "ifname": dut.ifname, "state": dut.state_dir, "pin_root": dut.pin_root,
            "peer_ip": dut.peer_ip, **{k: dut.objects[k] for k in ("tc_drop_port", "blocklist")},
            **as_0_1_0_built_them(objects, tmp_path)}
    env = dict(os.environ, PYTHONPATH=old)
    subprocess.run([sys.executable, "-c", OLD_RUN, json.dumps(args)], env=env, check=True, capture_output=True)
    with open(os.path.join(dut.state_dir, "state.json")) as fh:
        assert json.load(fh)["format"] == 1  # really the old layout
    assert dut.udp(7000) == 0 and dut.udp(7001, 5) == 0  # port rule, and the peer on the deny list

    store = StateStore(dut.state_dir)
    assert {(n, r.hook) for _i, n, r in store.records()} == {("dp", "xdp"), ("bl", "xdp"), ("tcdp", "tc")}
    # the new engine sees what the old one deployed as its own and current: nothing to change
    assert not dut.deploy("dp", config={"drop_port": 7000}, priority=10)["changed"]
    with netns(dut.dut):
        tc = hooks.deploy(tc_hook(dut.ifname, "ingress", "tcdp", object_path=dut.objects["tc_drop_port"],
                                  config={"drop_port": 7002}, priority=5, state_dir=dut.state_dir))
        assert not tc["changed"]
        facts = info.gather([dut.ifname], state_dir=dut.state_dir)[dut.ifname]
    assert [e["name"] for e in facts["chain"]] == ["dp", "bl"]
    assert facts["programs"]["tcdp"]["record"]["attach"] == {"direction": "ingress", "handle": 1}

    # the old checkpoint (before bl) is the rollback target: bl goes, the peer passes again
    with netns(dut.dut):
        result = checkpoint.rollback("previous", dut.bpffs, dut.state_dir)
    assert result["changed"] and result["actions"] == ["remove %s/bl" % dut.ifname]
    assert dut.udp(7001, 5) == 5 and dut.udp(7000) == 0 and dut.udp(7002) == 0
