"""One ONNX, never switched silently: which ONNX the OMs of ``--npu-results`` are compared with.

The OMs were converted from one ONNX file. The gate compares them with ``--onnx FILE`` (the file under test), or with
the single ``*.onnx`` the contributor copied into the results folder. Two ONNX files in the folder, or one whose
sha256 differs from ``--onnx``, would leave the gate to pick one: that is a usage error before any test runs, naming
both files.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from vnet_accept.errors import UsageError


@lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    from vnet_accept.io_utils import sha256_file

    return sha256_file(Path(path))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, computed once per (path, size, modification time) in this process (an ONNX is 180 MB)."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def onnx_for_oms(results_dir: str | os.PathLike[str] | None, onnx: str | os.PathLike[str] | None) -> Path | None:
    """The ONNX the OMs are compared with: ``onnx`` (``--onnx``), else the one ``*.onnx`` in ``results_dir``, else
    None. Raises :class:`UsageError` naming the files for two ONNX files in the folder, or one that is not ``onnx``."""
    given = Path(onnx).expanduser() if onnx else None
    if results_dir is None or not Path(results_dir).is_dir():
        return given
    folder = Path(results_dir)
    found = sorted(folder.glob("*.onnx"))
    if len(found) > 1:
        names = " and ".join(str(p) for p in found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")
        which = f"--onnx {given}" if given else "the one the OMs were converted from"
        raise UsageError(f"--npu-results {folder}: {len(found)} ONNX files, {names}; the OMs were converted from one "
                         f"ONNX - keep only {which} in the folder")
    if found and given is not None and given.is_file():
        theirs, ours = file_sha256(found[0]), file_sha256(given)
        if theirs != ours:
            raise UsageError(f"--npu-results {folder} holds {found[0]} (sha256 {theirs[:12]}…), which is not --onnx "
                             f"{given} (sha256 {ours[:12]}…): the OMs are judged against the ONNX they were converted "
                             "from - put that same file in both places, or remove the other one")
    return given if given is not None else (found[0] if found else None)
