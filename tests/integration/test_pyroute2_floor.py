# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine under the oldest pyroute2 it supports (links.PYROUTE2_FLOOR, Debian 12's python3-pyroute2 0.7.2):
XDP attach, atomic root replace and detach, a TC filter, link kinds and the neighbour table, proven by packets;
and one sentence, nothing attached, under a pyroute2 older than the floor.

The wheels are fetched by the fixture with `pip download` (PyPI, as test_host_role does) and unpacked into a
temporary folder that goes first on the child's PYTHONPATH, so the child imports that pyroute2 and not the
virtualenv's. The engine calls run in that child; the packets are sent by this process."""

import json
import os
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import links

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(REPO, "build", "collections")

CHILD = r"""
import json, sys
import pyroute2
from netlab import netns
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import hooks
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import links, neigh, xdp_netlink

args = json.loads(sys.argv[1])
out = {"version": pyroute2.__version__, "file": pyroute2.__file__}


def xdp(root, obj, config):
    return hooks.hook_for("xdp")(hooks.Request(args["ifname"], "dp", object_path=obj, config=config,
                                               objects={"root": root}, attach={"mode": "native"},
                                               state_dir=args["state_dir"]))


def tc(obj, config):
    return hooks.hook_for("tc")(hooks.Request(args["ifname"], "tcdp", object_path=obj, config=config,
                                              attach={"direction": "ingress", "handle": 1}, priority=10,
                                              state_dir=args["state_dir"]))


try:
    with netns(args["ns"]):
        if args["phase"] == "deploy":
            out["xdp"] = hooks.deploy(xdp(args["root"], args["drop_port"], {"drop_port": 7000, "drop_proto": 17}))
            out["again"] = hooks.deploy(xdp(args["root"], args["drop_port"], {"drop_port": 7000, "drop_proto": 17}))
            out["tc"] = hooks.deploy(tc(args["tc_drop_port"], {"drop_port": 7002}))
            out["state"] = xdp_netlink.xdp_state(links.ifindex(args["ifname"]))
            out["kinds"] = links.link_kinds()
            out["neigh"] = neigh.table(args["ifname"])
        elif args["phase"] == "replace":  # a new root: RTM_SETLINK with XDP_FLAGS_REPLACE and IFLA_XDP_EXPECTED_FD
            before = xdp_netlink.xdp_state(links.ifindex(args["ifname"]))
            out["xdp"] = hooks.deploy(xdp(args["root_v2"], args["drop_port"], {"drop_port": 7000, "drop_proto": 17}))
            out["before"], out["state"] = before, xdp_netlink.xdp_state(links.ifindex(args["ifname"]))
        elif args["phase"] == "remove":
            out["xdp"] = hooks.remove(xdp(args["root_v2"], None, {}))
            out["tc"] = hooks.remove(tc(None, {}))
            out["state"] = xdp_netlink.xdp_state(links.ifindex(args["ifname"]))
        else:  # "old": a pyroute2 below the floor
            out["ifindex"] = links.ifindex(args["ifname"])
except DatapathError as exc:
    out["error"] = exc.message
print(json.dumps(out, default=str))
"""


def _fetch(folder, version):
    """pyroute2==version from PyPI, unpacked into folder/<version> (a wheel is a zip file)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d",
                    str(folder), "pyroute2==%s" % version], check=True, timeout=300)
    wheel = next(p for p in os.listdir(str(folder)) if p.startswith("pyroute2-%s-" % version))
    target = os.path.join(str(folder), version)
    with zipfile.ZipFile(os.path.join(str(folder), wheel)) as archive:
        archive.extractall(target)
    return target


@pytest.fixture(scope="module")
def pyroute2_dirs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pyroute2")
    return {"floor": _fetch(folder, links.PYROUTE2_FLOOR), "older": _fetch(folder, "0.7.1")}


def _child(path, **args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([path, HERE, COLLECTIONS]))
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_floor_is_the_one_requirements_txt_and_the_host_role_name():
    with open(os.path.join(REPO, "requirements.txt")) as fh:
        assert "pyroute2>=%s" % links.PYROUTE2_FLOOR in fh.read().split()
    with open(os.path.join(REPO, "roles", "host", "vars", "main.yml")) as fh:
        assert "_host_pyroute2_floor: %s" % links.PYROUTE2_FLOOR in fh.read()


def test_attach_replace_and_detach_under_the_oldest_supported_pyroute2(dut, objects, pyroute2_dirs):
    common = dict(ns=dut.dut, ifname=dut.ifname, state_dir=dut.state_dir, root=objects["root"],
                  root_v2=objects["root_v2"], drop_port=objects["drop_port"], tc_drop_port=objects["tc_drop_port"])
    deployed = _child(pyroute2_dirs["floor"], phase="deploy", **common)
    assert deployed["version"] == links.PYROUTE2_FLOOR and deployed["file"].startswith(pyroute2_dirs["floor"])
    assert "error" not in deployed, deployed["error"]  # 0.7.2 unpatched: "Numerical result out of range (errno 34)"
    assert deployed["xdp"]["changed"] and deployed["xdp"]["mode"] == "native" and not deployed["again"]["changed"]
    assert deployed["tc"]["changed"] and deployed["state"]["mode"] == "native" and deployed["state"]["prog_id"]
    assert deployed["kinds"][dut.ifname][1] == "veth" and deployed["neigh"].get(dut.peer_ip)
    assert dut.udp(7000) == 0 and dut.udp(7002) == 0 and dut.udp(7001) == 20

    replaced = _child(pyroute2_dirs["floor"], phase="replace", **common)
    assert "error" not in replaced, replaced["error"]
    assert replaced["xdp"]["changed"] and replaced["state"]["prog_id"] != replaced["before"]["prog_id"]
    assert dut.udp(7000) == 0 and dut.udp(7001) == 20

    removed = _child(pyroute2_dirs["floor"], phase="remove", **common)
    assert "error" not in removed, removed["error"]
    assert removed["xdp"]["changed"] and removed["tc"]["changed"] and removed["state"]["mode"] is None
    assert dut.xdp_prog() == "" and "bpf" not in dut.tc_show()
    assert dut.udp(7000) == 20 and dut.udp(7002) == 20


def test_a_pyroute2_older_than_the_floor_gets_one_sentence(dut, pyroute2_dirs):
    older = _child(pyroute2_dirs["older"], phase="old", ns=dut.dut, ifname=dut.ifname)
    assert older["version"] == "0.7.1"
    assert older["error"].startswith("pyroute2 0.7.1 of %s is older than %s" % (sys.executable,
                                                                                links.PYROUTE2_FLOOR))
    assert "pip install 'pyroute2>=%s'" % links.PYROUTE2_FLOOR in older["error"]
