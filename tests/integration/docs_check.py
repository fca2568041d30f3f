# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-doc over every plugin and role of an installed (or linked) wirespeed.datapath, and what it must say."""

import ast
import glob
import json
import os
import subprocess
import sys

COLLECTION = "wirespeed.datapath"
PLUGIN_TYPES = ("module", "filter", "test", "lookup")


def ansible_doc(collections_path, *args):
    """(returncode, stdout, stderr) of ansible-doc with only `collections_path` to find collections in."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="1")
    env.pop("PYTHONPATH", None)  # the collection comes from collections_path, nowhere else
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), *args],
                          capture_output=True, text=True, env=env, check=False, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def _jinja_names(path, method):
    """Names a FilterModule.filters / TestModule.tests returns, read from the source (nothing imported)."""
    with open(path) as fh:
        tree = ast.parse(fh.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == method:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and isinstance(sub.value, ast.Dict):
                    return [k.value for k in sub.value.keys]
    return []


def source_plugins(root):
    """Every plugin the collection at `root` ships, by type, as short names (from the files, not from ansible-doc)."""
    out = {
        "module": sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(root, "plugins/modules/*.py"))
                         if not os.path.basename(p).startswith("_")),
        "lookup": sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(root, "plugins/lookup/*.py"))),
        "filter": sorted(n for p in glob.glob(os.path.join(root, "plugins/filter/*.py"))
                         for n in _jinja_names(p, "filters")),
        "test": sorted(n for p in glob.glob(os.path.join(root, "plugins/test/*.py")) for n in _jinja_names(p, "tests")),
        "role": sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(root, "roles/*/tasks"))),
    }
    return out


def problems(collections_path, root):
    """Every fault ansible-doc shows for the collection at `root` found through `collections_path`: errors,
    warnings, UNDOCUMENTED entries, plugins or roles it does not list, and docs without descriptions."""
    found = []
    expected = source_plugins(root)
    assert all(expected[t] for t in ("module", "filter", "test", "role")), expected  # the walk found them
    for kind in PLUGIN_TYPES + ("role",):
        rc, out, err = ansible_doc(collections_path, "-t", kind, "-l", "--json", COLLECTION)
        if rc or "[ERROR]" in err or "[WARNING]" in err:
            found.append("ansible-doc -t %s -l: rc %d: %s" % (kind, rc, err.strip()))
            continue
        listed = json.loads(out)
        names = sorted(n.split(".", 2)[2] for n in listed)
        if names != expected[kind]:
            found.append("%s: ansible-doc lists %s, the collection has %s" % (kind, names, expected[kind]))
        for name, summary in listed.items():
            # a role's summary: its entry points' short descriptions (ansible-doc 2.19 says UNDOCUMENTED at the
            # role's own level whenever meta/main.yml has no argument_specs key, which argument_specs.yml replaces)
            short = " ".join(summary.get("entry_points", {}).values()) if kind == "role" else summary
            if not short or "UNDOCUMENTED" in short:
                found.append("%s %s is UNDOCUMENTED" % (kind, name))
        rc, out, err = ansible_doc(collections_path, "-t", kind, "--json", *sorted(listed))
        if rc or "[ERROR]" in err or "[WARNING]" in err:
            found.append("ansible-doc -t %s %s: rc %d: %s" % (kind, " ".join(sorted(listed)), rc, err.strip()))
            continue
        docs = json.loads(out)
        for name in listed:
            found.extend(_doc_faults(kind, name, docs.get(name)))
    return found


def _doc_faults(kind, name, doc):
    if not doc:
        return ["%s %s: ansible-doc gave no documentation" % (kind, name)]
    if kind == "role":
        main = (doc.get("entry_points") or {}).get("main") or {}
        faults = [] if main.get("short_description") and main.get("description") else [
            "role %s: the main entry point has no short_description or description" % name]
        for option, spec in (main.get("options") or {}).items():
            if not spec.get("description"):
                faults.append("role %s: option %s has no description" % (name, option))
        return faults
    faults = []
    body = doc.get("doc") or {}
    if not body.get("short_description") or not body.get("description"):
        faults.append("%s %s: no short_description or description" % (kind, name))
    if not doc.get("examples"):
        faults.append("%s %s: no EXAMPLES" % (kind, name))
    if not doc.get("return"):
        faults.append("%s %s: no RETURN" % (kind, name))
    for option, spec in (body.get("options") or {}).items():
        if not spec.get("description"):
            faults.append("%s %s: option %s has no description" % (kind, name, option))
    for key, spec in (doc.get("return") or {}).items():
        if not spec.get("description"):
            faults.append("%s %s: return value %s has no description" % (kind, name, key))
    if kind == "module":
        attributes = body.get("attributes") or {}
        for attribute in ("action_group", "async", "check_mode", "diff_mode", "platform"):
            if attribute not in attributes or ("support" not in attributes[attribute] and attribute != "platform"):
                faults.append("module %s: attribute %s is not documented" % (name, attribute))
    return faults
