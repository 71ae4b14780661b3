"""Errors the gate reports to its user. Each message says what is wrong, names the file/UID/tile, and what to do.

``UsageError`` and its subclasses are bad input or environment (CLI exit status 2); they are shown as one line,
never as a traceback.
"""

from __future__ import annotations


class UsageError(Exception):
    """A mistake in what the user gave (a path, an option, a file's contents): one line, exit status 2."""


class CheckpointError(UsageError):
    """A checkpoint that cannot be read or does not fit the model."""


class DataError(UsageError):
    """A dataset, UID list, tile or result file that is missing, unreadable or inconsistent."""


class ToolError(UsageError):
    """An external tool (atc, ais_bench, benchmark, trtexec) that is missing or failed."""
