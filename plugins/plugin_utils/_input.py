# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""The one error for bad input checked on the controller, and the one wrapper that turns it into a failed filter."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError


class InputError(ValueError):
    """One sentence naming the bad input, where it came from and what to write instead."""


def filter_errors(func):
    """A filter that fails with the InputError's sentence alone: Ansible appends a chained cause's text (and its
    cause's), which would print the sentence twice and then the parser's own wording of the same fault."""
    @functools.wraps(func)
    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            raise AnsibleFilterError(str(exc)) from None
    return call
