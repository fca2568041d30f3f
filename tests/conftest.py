# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the collection importable as ansible_collections.wirespeed.datapath for every test."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, "build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "wirespeed", "datapath")

if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.relpath(REPO, os.path.dirname(LINK)), LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

# The test files that run longest (labs of ansible runs), started first: `make test` runs files in parallel
# (pytest-xdist --dist loadfile hands files out in collection order), so a long file collected last would run
# alone at the end while the other workers sit idle.
SLOWEST_FIRST = ("test_bad_inputs.py", "test_faults.py", "test_rollout.py", "test_lockout.py", "test_ansible_lab.py",
                 "test_fleet.py", "test_host_faults.py", "test_booted_hosts.py", "test_booted_trixie.py",
                 "test_host_role.py", "test_health.py", "test_flow_export.py", "test_user_project.py",
                 "test_host_role_distro.py", "test_roles.py", "test_packaging.py", "test_tc_roles.py",
                 "test_firewall.py", "test_wireguard_filter.py", "test_egress_ratelimit.py", "test_persistence.py",
                 "test_docs.py", "test_load_balancer.py", "test_nspawn_lab.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(rank)))  # stable: files stay whole
