"""The verifier's answer: cut libbpf's output down to the log lines, and one sentence that names the reason."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

from ..errors import DatapathError


def verifier_log(messages: str) -> list[str]:
    """The verifier's own lines out of libbpf's output, or []."""
    if "-- BEGIN PROG LOAD LOG --" not in messages:
        return []
    body = messages.split("-- BEGIN PROG LOAD LOG --", 1)[1].split("-- END PROG LOAD LOG --", 1)[0]
    return [line for line in body.splitlines() if line.strip()]


def load_error(path: str, prog_name: str, err: int, messages: str) -> DatapathError:
    log = verifier_log(messages)
    if log:
        tail = log[-20:]
        reason = next((line for line in reversed(log)
                       if not line.startswith(("processed ", "verification time", "stack depth"))), log[-1])
        return DatapathError("the kernel verifier rejected program %r from %s: %s"
                             % (prog_name, path, reason.strip()), detail="\n".join(tail))
    lines = [line.replace("libbpf: ", "") for line in messages.splitlines() if line.strip()]
    reason = lines[-1] if lines else os.strerror(err)
    return DatapathError("loading program %r from %s failed: %s" % (prog_name, path, reason),
                         detail="\n".join(lines[-20:]))
