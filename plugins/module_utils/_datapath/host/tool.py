"""The host tool: this engine packed as one zipapp (`python3 wirespeed.pyz restore|watchdog|expire|...`), no Ansible.

The zipapp is built on the host from the very sources the running module
imported (the module's own payload): the entry module (host/cli, whose main()
is the command line) and what it imports. So the boot-time restore and the
commit-confirmed watchdog run the same engine code as the task that armed
them, not a copy of it. Its bytes are deterministic, so installing it again
is a no-op.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ast
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import zipfile

from ..errors import DatapathError

PACKAGE = __name__.rsplit(".", 2)[0]  # ansible_collections.wirespeed.datapath.plugins.module_utils._datapath
ENTRY = PACKAGE + ".host.cli"  # whose main() is the command line; a module that installs the tool imports it
TOOL_NAME = "wirespeed.pyz"
MAIN = ("from %s import %s as entry\n"
        "raise SystemExit(entry.main())\n")
_STAMP = (2020, 1, 1, 0, 0, 0)


def tool_path(state_dir: str) -> str:
    return os.path.join(state_dir, "lib", TOOL_NAME)


def _source(name: str):
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return None, False
    return spec.loader.get_source(name), spec.submodule_search_locations is not None


def _imports(name: str, source: str, is_package: bool):
    """Module names a module imports relatively (`from . import x`, `from ..kernel.maps import y`)."""
    here = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = here
        for _up in range(node.level - 1):
            base = base.rpartition(".")[0]
        if node.module:
            base = "%s.%s" % (base, node.module)
        yield base
        for alias in node.names:
            yield "%s.%s" % (base, alias.name)


def sources(entry: str) -> dict:
    """{module name: (source, is package)} of the entry module and every engine module it imports, relatively."""
    roots = [entry]
    found, todo = {}, roots + [PACKAGE]
    while todo:
        name = todo.pop()
        if name in found or not name.startswith(PACKAGE):
            continue
        try:
            source, is_package = _source(name)
        except (ImportError, ValueError):
            source, is_package = None, False
        if source is None:
            continue  # an attribute, not a module
        found[name] = (source, is_package)
        todo.extend(_imports(name, source, is_package))
        parent = name.rpartition(".")[0]
        if parent.startswith(PACKAGE):
            todo.append(parent)
    missing = [r for r in roots if r not in found]
    if missing:  # the caller's payload lacks the entry module: a tool built now could not start
        raise DatapathError("the engine module %s is not available to build the host tool; import it in the module "
                            "that installs the tool." % missing[0])
    return found


def build(entry: str) -> bytes:
    """The zipapp's bytes: the engine modules, empty parents of the package, and __main__."""
    files = {"__main__.py": MAIN % entry.rpartition(".")[::2]}
    parts = PACKAGE.split(".")
    for depth in range(1, len(parts)):
        files["/".join(parts[:depth]) + "/__init__.py"] = ""
    for name, (source, is_package) in sources(entry).items():
        path = name.replace(".", "/") + ("/__init__.py" if is_package else ".py")
        files[path] = source
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, _STAMP)
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[path])
    return out.getvalue()


def install(state_dir: str, *, entry: str = ENTRY, check_mode: bool = False, python: str | None = None) -> dict:
    """Write the zipapp to <state_dir>/lib/wirespeed.pyz unless it holds these bytes already; a new one must start."""
    path = tool_path(state_dir)
    data = build(entry)
    try:
        with open(path, "rb") as fh:
            same = fh.read() == data
    except FileNotFoundError:
        same = False
    if same or check_mode:
        return {"changed": not same, "path": path}
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".wirespeed.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        started = subprocess.run([python or sys.executable, tmp, "--help"], capture_output=True, text=True,
                                 check=False, cwd="/", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        if started.returncode != 0:
            os.unlink(tmp)
            raise DatapathError("the host tool built for %s does not start (%s); the previous one was kept."
                                % (path, (started.stderr.strip().splitlines() or ["no output"])[-1]))
        os.replace(tmp, path)
    except OSError as exc:
        raise DatapathError("the host tool cannot be written to %s (%s); set state_dir to a writable path."
                            % (path, exc.strerror)) from exc
    return {"changed": True, "path": path}
