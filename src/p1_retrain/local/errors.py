"""Errors of the local stack."""

from __future__ import annotations


class LocalStackError(RuntimeError):
    """The local stack cannot be built or driven (bad template, missing file, unsupported construct)."""
