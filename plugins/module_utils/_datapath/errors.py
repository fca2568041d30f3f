"""The one exception type the engine raises for problems a person must fix."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class DatapathError(Exception):
    """A sentence for the operator, plus optional detail (compiler or verifier output)."""

    def __init__(self, message, detail=None, code=None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.code = code  # a stable word for callers that react to one kind of error
