# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""site.yml's no-op fast path: a digest of everything a run asks of one host (its intent); the filter intent and
the lookup code_digest hand it over.

A host whose datapath is still exactly as the last run of the same intent
left it (datapath_checkpoint step=begin checks that on the host) has nothing
to do, and site.yml skips its roles. So the intent must change whenever
anything the roles read changes: every variable named after one of the
collection's roles or wirespeed_ (run-control variables of the rollout
aside), the contents of every controller file those variables name, and the
collection's own code. When a named file cannot be found, the intent is made
unique, so that the run does the whole work.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets

from ansible.errors import AnsibleError

COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CODE_DIRS = ("files", "plugins", "playbooks", "roles")
# how a run is carried out, not what the datapath should be
RUN_CONTROL = {"wirespeed_batches", "wirespeed_serial", "wirespeed_max_fail_percentage", "wirespeed_bake_seconds",
               "wirespeed_baseline_seconds", "wirespeed_max_drop_rate_increase", "wirespeed_health_probe",
               "wirespeed_confirm_timeout", "wirespeed_confirm_reach_timeout", "wirespeed_hosts",
               "wirespeed_full_converge"}


def code_digest(root=COLLECTION):
    """sha256 over the collection's roles, playbooks, plugins and BPF sources (names and contents)."""
    h = hashlib.sha256()
    for top in CODE_DIRS:
        for folder, dirs, files in sorted(os.walk(os.path.join(root, top))):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "molecule"))
            for name in sorted(files):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _prefixes(root=COLLECTION):
    roles = os.path.join(root, "roles")
    names = sorted(os.listdir(roles)) if os.path.isdir(roles) else []
    return tuple(["wirespeed_"] + ["%s_" % n for n in names])


def _files(value, named_file):
    """sha256 of every existing file a value names; a file-named variable whose file is missing gets a nonce."""
    out = []
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, str) and item and len(item) < 4096 and os.path.isfile(item):
            with open(item, "rb") as fh:
                out.append([item, hashlib.sha256(fh.read()).hexdigest()])
        elif named_file and isinstance(item, str) and item:
            out.append([item, "not found from %s: %s" % (os.getcwd(), secrets.token_hex(8))])
    return out


def intent(host_vars, code):
    """The digest of what a run asks of one host, from its variables (hostvars[inventory_hostname])."""
    prefixes = _prefixes()
    wanted = {}
    for name in sorted(k for k in host_vars if k.startswith(prefixes) and k not in RUN_CONTROL):
        try:
            value = host_vars[name]
        except AnsibleError as exc:  # a variable that cannot be read: never converged
            value = "unreadable (%s) %s" % (type(exc).__name__, secrets.token_hex(8))
        wanted[name] = [value, _files(value, name.endswith(("_file", "_files")))]
    text = json.dumps([code, wanted], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
