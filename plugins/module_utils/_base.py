# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""The one place where modules meet the engine: result shape, check mode, diff, errors."""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath import hooks
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.kernel import links
from ansible_collections.wirespeed.datapath.plugins.module_utils._datapath.program.compile import object_for

# Where a host keeps its datapath; documented in the wirespeed.datapath.program.paths doc fragment.
PATHS_ARGUMENT_SPEC = dict(
    bpffs=dict(type="path", default="/sys/fs/bpf"),
    state_dir=dict(type="path", default="/var/lib/wirespeed"),
)

# Options of every program-deploying module; documented in the wirespeed.datapath.program doc fragment.
PROGRAM_ARGUMENT_SPEC = dict(
    PATHS_ARGUMENT_SPEC,
    src=dict(type="path"),
    object=dict(type="path"),
    program=dict(type="str"),
    config=dict(type="dict", default={}),
    defines=dict(type="dict", default={}),
    include_dirs=dict(type="list", elements="path", default=[]),
    pin_path=dict(type="path"),
    verify=dict(type="bool", default=True),
    compile_on=dict(type="str", choices=["auto", "controller", "host"], default="auto"),
    clang=dict(type="str", default="clang"),
)


class DatapathModule:
    """Build the AnsibleModule, call the engine, turn its answer into the task result.

    The engine returns a dict with at least `changed`, and `diff` as
    {'before': ..., 'after': ...}; the diff is kept only under --diff.
    A DatapathError becomes failed=true with its one-sentence message, plus
    the compiler or verifier output under `detail`.
    """

    def __init__(self, argument_spec, **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        self.module = AnsibleModule(argument_spec=argument_spec, **kwargs)
        if not links.HAS_PYROUTE2:
            self.module.fail_json(msg=missing_required_lib("pyroute2>=%s" % links.PYROUTE2_FLOOR),
                                  exception=str(links.PYROUTE2_IMPORT_ERROR))
        problem = links.pyroute2_problem()
        if problem:
            self.module.fail_json(msg=problem)

    @property
    def params(self):
        return self.module.params

    def run(self, operation):
        """operation(params, check_mode, diff_mode) -> result dict; exits the module."""
        try:
            result = operation(self.module.params, self.module.check_mode, self.module._diff)
        except DatapathError as exc:
            extra = {}
            if exc.detail:
                extra["detail"] = exc.detail
                extra["detail_lines"] = exc.detail.splitlines()
            if exc.code:
                extra["error_code"] = exc.code
            self.module.fail_json(msg=exc.message, **extra)
        except OSError as exc:
            where = " (%s)" % exc.filename if getattr(exc, "filename", None) else ""
            self.module.fail_json(msg="an operation on the host failed%s: %s; see the exception for where."
                                  % (where, exc.strerror or exc),
                                  exception=traceback.format_exc())
        if not self.module._diff:
            result.pop("diff", None)
        for warning in result.pop("warnings", None) or []:  # exit_json(warnings=...) is deprecated
            self.module.warn(warning)
        self.module.exit_json(**result)


def run_program(hook_name, params, check_mode, objects=None):
    """The hand-off of a program-deploying module: its parameters to the registered hook, deploy or remove."""
    hook_class = hooks.hook_for(hook_name)
    present = params["state"] == "present"
    object_path = object_for(params["src"] if present else None, params["object"], params["include_dirs"],
                             params["defines"], params["clang"])
    hook = hook_class.from_params(params, object_path, objects if present else None)
    try:
        return hooks.deploy(hook, check_mode) if present else hooks.remove(hook, check_mode)
    except DatapathError as exc:
        if present and params["src"] and object_path != params["src"]:  # compiled here: name the source
            exc.message = exc.message.replace(object_path, params["src"])
        raise
