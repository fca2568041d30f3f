# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for real-kernel tests: compiled objects and a fresh veth pair per test."""

import os
import random
import shutil
import sys

import pytest

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import hooks
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import bpffs
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program import compile as bpfcc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netlab import Net, netns, run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF = os.path.join(REPO, "files", "bpf")
INCLUDE = os.path.join(BPF, "include")
TEST_BPF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpf")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        raise pytest.UsageError("the integration tests load BPF programs and create namespaces: run them as root")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("objcache"))


@pytest.fixture(scope="session")
def objects(cache_dir, tmp_path_factory):
    """Compiled objects by short name."""
    def build(path, **defines):
        return bpfcc.compile_source(path, [INCLUDE], defines, cache_dir=cache_dir)["path"]
    # a second version of the plain blocklist: other instructions, same map
    v2 = tmp_path_factory.mktemp("v2") / "plain_blocklist.bpf.c"
    with open(os.path.join(TEST_BPF, "plain_blocklist.bpf.c")) as fh:
        v2.write_text(fh.read().replace("return XDP_DROP;", "return *hits > 1000000000 ? XDP_PASS : XDP_DROP;"))
    # second versions of the port filter and of the chain root: other instructions, same behaviour

    def variant(src, name, old, new):
        with open(src) as fh:
            text = fh.read()
        assert old in text, "%s no longer contains %r: update the variant" % (src, old)
        path = tmp_path_factory.mktemp(name) / os.path.basename(src)
        path.write_text(text.replace(old, new))
        return str(path)
    dp2 = variant(os.path.join(BPF, "examples", "drop_port.bpf.c"), "dp2",
                  "if (pkt.dport == bpf_htons(drop_port))", "if (bpf_ntohs(pkt.dport) == drop_port)")
    root2 = variant(os.path.join(BPF, "wirespeed_root.bpf.c"), "root2", "return ws_chain_next(ctx);",
                    "if (ctx->data == ctx->data_end)\n\t\treturn XDP_DROP;\n\treturn ws_chain_next(ctx);")
    tc2 = variant(os.path.join(TEST_BPF, "tc_drop_port.bpf.c"), "tc2",
                  "udp->dest == bpf_htons(drop_port)", "bpf_ntohs(udp->dest) == drop_port")
    return {
        "tc_drop_port": build(os.path.join(TEST_BPF, "tc_drop_port.bpf.c")),
        "tc_drop_7002": build(os.path.join(TEST_BPF, "tc_drop_port.bpf.c"), DEFAULT_PORT=7002),
        "tc_drop_port_v2": build(tc2),
        "tc_reject": build(os.path.join(TEST_BPF, "tc_reject.bpf.c")),
        "dscp": build(os.path.join(BPF, "dscp_marking.bpf.c")),
        "drop_port_v2": build(dp2),
        "root_v2": build(root2),
        "root_src": os.path.join(BPF, "wirespeed_root.bpf.c"),
        "blocklist_v2": build(str(v2)),
        "root": build(os.path.join(BPF, "wirespeed_root.bpf.c")),
        "drop_port": build(os.path.join(BPF, "examples", "drop_port.bpf.c")),
        "blocklist": build(os.path.join(TEST_BPF, "plain_blocklist.bpf.c")),
        "blocklist_big": build(os.path.join(TEST_BPF, "plain_blocklist.bpf.c"), BLOCKLIST_SIZE=4096),
        "reject": build(os.path.join(TEST_BPF, "verifier_reject.bpf.c")),
        "two": build(os.path.join(TEST_BPF, "two_programs.bpf.c")),
        "build": build,
    }


def xdp_hook(interface, name, root_object=None, mode="auto", **kw):
    """The XDP hook for a request written the way the tests write it."""
    return hooks.hook_for("xdp")(hooks.Request(interface, name, objects={"root": root_object}, attach={"mode": mode},
                                               **kw))


def tc_hook(interface, direction, name, handle=1, **kw):
    return hooks.hook_for("tc")(hooks.Request(interface, name, attach={"direction": direction, "handle": handle}, **kw))


class Dut(Net):
    """A Net whose engine calls run inside the dut namespace."""

    def __init__(self, objects):
        super().__init__()
        self.objects = objects

    def request(self, name, obj="drop_port", **kw):
        kw.setdefault("root_object", self.objects["root"])
        kw.setdefault("state_dir", self.state_dir)
        return xdp_hook(kw.pop("interface", self.ifname), name, object_path=self.objects.get(obj, obj), **kw)

    def deploy(self, name, obj="drop_port", check_mode=False, **kw):
        with netns(self.dut):
            return hooks.deploy(self.request(name, obj, **kw), check_mode)

    def remove(self, name, check_mode=False, **kw):
        with netns(self.dut):
            return hooks.remove(self.request(name, **kw), check_mode)

    def tc_request(self, name, obj, direction="ingress", **kw):
        kw.setdefault("state_dir", self.state_dir)
        return tc_hook(kw.pop("interface", self.ifname), direction, name, object_path=self.objects.get(obj, obj), **kw)

    def tc_deploy(self, name, obj="tc_drop_port", direction="ingress", check_mode=False, **kw):
        with netns(self.dut):
            return hooks.deploy(self.tc_request(name, obj, direction, **kw), check_mode)

    def tc_remove(self, name, direction="ingress", check_mode=False, **kw):
        with netns(self.dut):
            return hooks.remove(self.tc_request(name, None, direction, **kw), check_mode)

    def tc_show(self, direction="ingress"):
        return run(["ip", "netns", "exec", self.dut, "tc", "filter", "show", "dev", self.ifname,
                    direction]).stdout


@pytest.fixture
def dut(objects):
    net = Dut(objects)
    try:
        yield net
    finally:
        net.close()


@pytest.fixture(scope="module")
def pins():
    """A private bpffs folder for programs a test file loads unattached (packets.Unattached), removed after it."""
    bpffs.ensure_bpffs()
    root = os.path.join(bpffs.DEFAULT_BPFFS, "wstest%05x" % random.randrange(1 << 20))
    os.makedirs(root)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
