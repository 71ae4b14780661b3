"""Output paths checked before any work: a command that would fail to write its result after minutes of work
(training, inference, normalising a dataset) says so at once, naming the option and the path.

Policy (README "Exit status"): a missing output folder, and any missing parent, is created; an output that exists
with the wrong type (a folder where a file is written, a file where a folder is), a file in the way of a folder
to create, or a folder that cannot be written is a usage error (exit status 2) naming the option and the path.
"""

from __future__ import annotations

import os
from pathlib import Path

from vnet_accept.errors import UsageError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_parent(path: Path, option: str, what: str) -> None:
    existing = _nearest_existing(path.parent if path.parent != path else path)
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, so the {what} cannot be created there; remove it "
                         "or choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder {existing} is not writable; choose an output folder you can "
                         "write to (or fix its permissions)")


def output_file(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` as an output file: not an existing folder, its folder creatable and writable."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name (e.g. {path / 'out'}…)")
    if path.exists() and not os.access(path, os.W_OK) and not os.access(path.parent, os.W_OK):
        raise UsageError(f"{option} {path}: cannot be replaced (no write permission); choose another path")
    _check_parent(path, option, "file")
    return path


def output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` as an output folder: not an existing file; it, or the folder it will be created in, writable."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file, a folder is expected; remove it or choose another path")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path}: the folder is not writable; choose an output folder you can write "
                             "to (or fix its permissions)")
        return path
    _check_parent(path, option, "folder")
    return path
