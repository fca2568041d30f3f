# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""Controller side of xdp_program and tc_filter: compile once on the controller, ship objects, run the module."""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.compile import (
    compile_source,
    find_clang,
)

BPF_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "files", "bpf"))
INCLUDE_DIR = os.path.join(BPF_DIR, "include")
ROOT_SRC = os.path.join(BPF_DIR, "wirespeed_root.bpf.c")
ROOT_NAME = "the wirespeed chain root (wirespeed_root.bpf.c)"
# src: wirespeed.datapath:firewall.bpf.c names a program shipped in the collection's files/bpf (or its examples/),
# so a playbook in a user's own project reaches them without knowing where the collection is installed.
SHIPPED_PREFIX = "wirespeed.datapath:"


def shipped_programs() -> list:
    """The names src can give after wirespeed.datapath: (examples as examples/<name>)."""
    names = [n for n in os.listdir(BPF_DIR) if n.endswith(".bpf.c") and n != os.path.basename(ROOT_SRC)]
    examples = os.path.join(BPF_DIR, "examples")
    if os.path.isdir(examples):
        names += ["examples/" + n for n in os.listdir(examples) if n.endswith(".bpf.c")]
    return sorted(names)


def shipped_program(src: str) -> str:
    """The path on the controller of a shipped program named wirespeed.datapath:<name>; one sentence otherwise."""
    name = src[len(SHIPPED_PREFIX):].strip().lstrip("/")
    known = shipped_programs()
    for candidate in (name, "examples/" + name):
        if candidate in known:
            return os.path.join(BPF_DIR, candidate)
    raise DatapathError("src %s names no program shipped with wirespeed.datapath; give one of %s (as "
                        "wirespeed.datapath:<name>), or a path to your own source." % (src, ", ".join(known)))


def both_given(module, args):
    """The one-sentence refusal of src and object together, or None when at most one is given."""
    if args.get("src") is None or args.get("object") is None:
        return None
    return ("%s got both src (%s) and object (%s), which are mutually exclusive; give src to compile the program "
            "from C source, or object for an already compiled BPF object, not both."
            % (module.rsplit(".", 1)[-1], args["src"], args["object"]))


def name_paths(result, names):
    """Put the names the user knows in place of the host paths of shipped copies, in msg, detail and detail_lines.

    `names` maps a shipped file's (or folder's) path on the host to what to call it; the longer paths go first,
    so a file inside a shipped folder gets its own name rather than the folder's.
    """
    order = sorted(names, key=len, reverse=True)

    def named(text):
        if not isinstance(text, str):
            return text
        for remote in order:
            text = text.replace(remote, names[remote])
        return text

    for key in ("msg", "detail"):
        if key in result:
            result[key] = named(result[key])
    if isinstance(result.get("detail_lines"), list):
        result["detail_lines"] = [named(line) for line in result["detail_lines"]]
    return result


class CompileAction(ActionBase):
    """Turn `src` into an object on the host (compiled here, or shipped as source), then run MODULE."""

    TRANSFERS_FILES = True
    _supports_async = True  # compiling stays in the foreground; the module (load, verify, attach) runs async
    MODULE = None
    NEEDS_ROOT = False  # the XDP chain root travels with every XDP program

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        refusal = both_given(self.MODULE, args)
        if refusal:  # before anything is compiled or shipped: compiling src would silently replace object
            result.update(failed=True, changed=False, msg=refusal)
            return result
        self._names = {}  # host path of each shipped copy -> the name the user knows it by
        shipped = []

        def work():
            shipped.append(self._prepare(args) if args.get("state", "present") == "present" else None)
            # async: the host's async_wrapper runs the module and then removes the temporary directory with the
            # shipped objects in it (and _execute_module forgets it here, so the finally below leaves it alone)
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            return self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars,
                                        wrap_async=wrap_async)

        module_result = self._run_reporting(result, work)
        if module_result is None:
            return result
        if shipped[0] == "host" and module_result.get("error_code") == "clang_missing":
            module_result["msg"] = (
                "clang (%s) was found neither on the controller nor on host %s, so %s cannot be compiled; "
                "install clang on either, or pass a prebuilt object."
                % (args.get("clang", "clang"), task_vars.get("inventory_hostname"), self._task.args.get("src")))
        if self._task.args.get("src"):
            module_result["src"] = self._task.args["src"]
        module_result["compiled_on"] = shipped[0]
        result.update(module_result)
        return result

    def _run_reporting(self, result, work):
        """work()'s module result with the shipped copies' paths named as the user knows them; or None, with
        `result` made the failure, when preparing or running failed (the temporary directory removed either
        way)."""
        try:
            module_result = work()
        except DatapathError as exc:
            result.update(failed=True, msg=exc.message)
            if exc.detail:
                result.update(detail=exc.detail, detail_lines=exc.detail.splitlines())
            return None
        except AnsibleError as exc:
            result.update(failed=True, msg=str(exc.message))
            name_paths(result, self._names)
            return None
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return name_paths(module_result, self._names)

    def _remote(self, name):
        if not self._connection._shell.tmpdir:
            self._make_tmp_path()
        return self._connection._shell.join_path(self._connection._shell.tmpdir, name)

    def _ship(self, local, name, shown=None):
        """Copy `local` to the host's temporary directory; messages call the copy `shown` (else `local`)."""
        remote = self._remote(name)
        self._transfer_file(local, remote)
        self._fixup_perms2((self._connection._shell.tmpdir, remote))
        self._names[remote] = shown or local
        return remote

    def _local(self, path):
        if str(path).startswith(SHIPPED_PREFIX):
            return shipped_program(path)
        try:
            return self._find_needle("files", path)
        except AnsibleError:
            return None

    def _prepare(self, args):
        """Rewrite args so the module gets objects (or sources) that exist on the host."""
        clang = args.get("clang", "clang")
        where = args.pop("compile_on", "auto")
        includes = [INCLUDE_DIR] + list(args.get("include_dirs") or [])
        src = args.get("src")
        if src:
            local_src = self._local(src)
            if local_src is None:
                raise DatapathError("src %s was not found on the controller; check the path." % src)
            if where == "controller" or (where == "auto" and find_clang(clang)):
                built = compile_source(local_src, includes + [os.path.dirname(local_src)], args.get("defines"),
                                       clang=clang)
                args.pop("src")
                args["object"] = self._ship(built["path"], "program.bpf.o", shown=src)
                self._root_object(args, clang)
                return "controller"
            args["src"] = self._ship_sources(local_src)
            self._root_source(args)
            args["include_dirs"] = [self._remote("bpf/include")]
            return "host"
        local_obj = self._local(args["object"]) if args.get("object") else None
        if local_obj:
            args["object"] = self._ship(local_obj, "program.bpf.o", shown=args["object"])
        if not self.NEEDS_ROOT:
            return None  # nothing to compile
        if find_clang(clang):
            self._root_object(args, clang)
            return "controller"
        self._ship_sources(None)
        self._root_source(args)
        args["include_dirs"] = [self._remote("bpf/include")]
        return "host"

    def _shown_src(self):
        """The src as the task gave it, for messages about the shipped copy."""
        return self._task.args.get("src")

    def _root_object(self, args, clang):
        if self.NEEDS_ROOT:
            built = compile_source(ROOT_SRC, [INCLUDE_DIR], clang=clang)
            args["root_object"] = self._ship(built["path"], "wirespeed_root.bpf.o", shown=ROOT_NAME)

    def _root_source(self, args):
        if self.NEEDS_ROOT:
            args["root_src"] = self._remote("bpf/wirespeed_root.bpf.c")

    def _ship_sources(self, local_src):
        """Copy the shared headers, the chain root and the program source (with its local headers) to the host."""
        files = [(ROOT_SRC, "bpf/wirespeed_root.bpf.c", ROOT_NAME)]
        self._names[self._remote("bpf/include")] = INCLUDE_DIR  # clang's -I, and headers named with it
        for dirpath, _dirs, names in os.walk(INCLUDE_DIR):
            for name in names:
                path = os.path.join(dirpath, name)
                files.append((path, "bpf/include/" + os.path.relpath(path, INCLUDE_DIR), None))
        if local_src:
            srcdir = os.path.dirname(local_src)
            self._names[self._remote("bpf/src")] = srcdir
            files.append((local_src, "bpf/src/" + os.path.basename(local_src), self._shown_src()))
            files.extend((os.path.join(srcdir, n), "bpf/src/" + n, None)
                         for n in os.listdir(srcdir) if n.endswith(".h"))
        dirs = sorted({os.path.dirname(self._remote(rel)) for _local, rel, _shown in files})
        quote = self._connection._shell.quote  # the host shell's quoting, not ours
        made = self._low_level_execute_command("mkdir -p " + " ".join(quote(d) for d in dirs))
        if made.get("rc"):
            raise DatapathError("the folders for the BPF sources could not be made on the host (%s); check that %s "
                                "is writable." % ((made.get("stderr") or "").strip(), self._connection._shell.tmpdir))
        for local, rel, shown in files:
            self._ship(local, rel, shown)
        return self._remote("bpf/src/" + os.path.basename(local_src)) if local_src else None
