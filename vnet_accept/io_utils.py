"""Small file helpers every stage uses: atomic writes, content hashes, staging folders, and the CPUs this
process may use.

An interrupted run must never leave a truncated file that a later step mistakes for a good one, so everything
the gate writes goes to a temporary file in the same directory and is renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_CHUNK = 1 << 20
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[BinaryIO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file wanted, not the temporary name
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode a plain open() would
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p path``; an OSError names the path in the way (a file where a folder is needed) or the one that
    cannot be created, so the command line can say which."""
    path = Path(path)
    if path.is_dir():
        return path
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "is a file", str(parent))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(exc.filename or path)) from None
    return path


def relax_mode(path: str | os.PathLike[str]) -> None:
    """Give a folder made by ``mkdtemp`` (mode 0700) the mode ``mkdir`` would (0777 minus the umask), so other
    users (e.g. the one running ais_bench) can read what is published in it."""
    os.chmod(path, 0o777 & ~_UMASK)


# --- staging folders of interrupted runs ------------------------------------------------------------------------
_HOST = socket.gethostname().replace("-", "_").replace("/", "_") or "host"
#: A staging folder without a host and pid in its name (older versions) is stale after this long.
LEGACY_STAGING_AGE_S = 3600.0


def staging_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new hidden folder ``<prefix><host>-<pid>-<random>.tmp`` in ``parent`` (created), mode as ``mkdir``
    would make it. The host and pid let :func:`remove_stale_staging` tell a killed run's leftovers from a live
    run's folder."""
    parent = ensure_dir(parent)
    try:
        path = Path(tempfile.mkdtemp(prefix=f"{prefix}{_HOST}-{os.getpid()}-", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(parent)) from None
    relax_mode(path)
    return path


def remove_stale_staging(parent: str | os.PathLike[str], prefix: str) -> list[Path]:
    """Delete the staging folders ``<prefix>*.tmp`` in ``parent`` left by runs that are gone (killed, crashed):
    those of this host whose process no longer exists, and unnamed ones (older versions) older than an hour.
    A live run's folder, or another host's, is left alone. Returns what was removed."""
    parent = Path(parent)
    removed: list[Path] = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return removed
    for folder in candidates:
        if not folder.is_dir() or folder.is_symlink():
            continue
        if _staging_is_stale(folder, folder.name[len(prefix):-len(".tmp")]):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
    return removed


def _staging_is_stale(folder: Path, middle: str) -> bool:
    parts = middle.rsplit("-", 2)
    if len(parts) == 3 and parts[1].isdigit():
        host, pid = parts[0], int(parts[1])
        return host == _HOST and pid != os.getpid() and not process_alive(pid)
    try:
        return time.time() - folder.stat().st_mtime > LEGACY_STAGING_AGE_S
    except OSError:
        return False


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_output(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Strict JSON (jq and browsers reject NaN): non-finite floats are written as the strings "NaN",
    "Infinity", "-Infinity"."""
    return atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False,
                                              default=_json_default) + "\n")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _finite(obj.tolist())
    return obj


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and paths show up in records; keep the writer tolerant of them.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: ``taskset``, a container's cpuset), else the machine's.
    ``os.cpu_count()`` counts the machine's CPUs, which oversubscribes a process pinned to fewer."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return os.cpu_count() or 1


def claim_cpu_share(index: int, count: int) -> tuple[int, ...] | None:
    """Pin this process to its share of the CPUs it may use: worker ``index`` of ``count`` sibling processes
    (pytest-xdist workers) gets every ``count``-th CPU from ``index``, at least one. Each process's PyTorch,
    OpenMP, ONNX Runtime and data jobs then size themselves to that share (:func:`available_cpus`) instead of
    each starting a thread per CPU: two workers × two threads on two cores ran the suite no faster than one.
    Returns the CPUs kept, or ``None`` where affinity cannot be set (macOS, Windows) or nothing needs sharing."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if count <= 1 or len(cpus) <= 1:
        return None
    share = tuple(cpus[index % len(cpus)::count]) or (cpus[index % len(cpus)],)
    try:
        os.sched_setaffinity(0, share)
    except OSError:
        return None
    import sys

    if "torch" in sys.modules:  # imported before the share was claimed: its thread pool was sized to all CPUs
        sys.modules["torch"].set_num_threads(len(share))
    return share
