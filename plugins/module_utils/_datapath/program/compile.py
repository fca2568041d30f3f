"""Compile BPF C with clang into a content-addressed object cache.

The cache key is the SHA-256 of the compiler's identity, the flags and the
*preprocessed* source, so a change in any included header recompiles while
an unchanged tree is a cache hit costing one preprocessor run.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile

from ..errors import DatapathError

CFLAGS = ["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"]
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wirespeed", "objects")


def find_clang(clang: str = "clang") -> str | None:
    """Return the path of the compiler, or None when it is not installed."""
    if os.sep in clang:
        return clang if os.access(clang, os.X_OK) else None
    return shutil.which(clang)


def multiarch_include() -> list[str]:
    """Debian keeps asm/types.h under /usr/include/<multiarch>."""
    arch = sysconfig.get_config_var("MULTIARCH")
    if not arch:
        arch = "%s-linux-gnu" % os.uname().machine
    path = os.path.join("/usr/include", arch)
    return [path] if os.path.isdir(path) else []


def define_flags(defines: dict | None) -> list[str]:
    """Turn a dict into sorted -D flags; names must be C identifiers."""
    flags = []
    for name in sorted(defines or {}):
        if not _IDENT.match(str(name)):
            raise DatapathError(
                "defines key %r is not a C identifier; use letters, digits and underscores." % (name,))
        value = defines[name]
        if value is None or value is True:
            flags.append("-D%s" % name)
        elif value is False:
            flags.append("-D%s=0" % name)
        else:
            flags.append("-D%s=%s" % (name, value))
    return flags


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _run(cmd, what, src):
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False)
    except OSError as exc:
        raise DatapathError("could not run %s for %s: %s" % (cmd[0], src, exc)) from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        first = next((line for line in err.splitlines() if "error" in line), err.splitlines()[0] if err else "")
        raise DatapathError("%s of %s failed: %s" % (what, src, first), detail=err)
    return proc.stdout


def object_for(src: str | None, object_path: str | None, include_dirs: tuple[str, ...] | list[str] = (),
               defines: dict | None = None, clang: str = "clang") -> str | None:
    """The object to load on this host: object_path, or src compiled here when src is given."""
    if src:
        return compile_source(src, include_dirs, defines, clang=clang)["path"]
    return object_path


def compile_source(src: str, include_dirs: tuple[str, ...] | list[str] = (), defines: dict | None = None,
                   cache_dir: str | None = None, clang: str = "clang") -> dict:
    """Compile src; return {'path', 'sha256', 'cached'} of the object in the cache."""
    if not os.path.isfile(src):
        raise DatapathError("source file %s does not exist; check the src option." % src)
    compiler = find_clang(clang)
    if compiler is None:
        raise DatapathError(
            "clang (%s) is not installed here, so %s cannot be compiled; install clang "
            "or pass a prebuilt object." % (clang, src), code="clang_missing")
    cache_dir = cache_dir or default_cache_dir()
    incs = ["-I%s" % d for d in list(include_dirs) + multiarch_include()]
    flags = CFLAGS + incs + define_flags(defines)
    version = _run([compiler, "--version"], "clang --version", src)
    pre = _run([compiler] + flags + ["-E", src], "preprocessing", src)
    key = hashlib.sha256(b"\0".join([version, " ".join(flags).encode(), pre])).hexdigest()
    target = os.path.join(cache_dir, key + ".o")
    if os.path.exists(target):
        return {"path": target, "sha256": sha256_file(target), "cached": True}
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".o.tmp")
    os.close(fd)
    try:
        _run([compiler] + flags + ["-c", src, "-o", tmp], "compile", src)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"path": target, "sha256": sha256_file(target), "cached": False}
