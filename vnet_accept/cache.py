"""Content-addressed artifact cache: ONNX exports, prepared data, OM files built on demand.

An entry is a directory ``<root>/<namespace>/<key>/`` where ``key`` is the sha256 of the canonical JSON of
everything that determines the artifact (input file hashes, options, library versions). It is built in a
temporary sibling directory and renamed into place, under a ``FileLock`` on ``<key>.lock``, so pytest-xdist
workers (or two terminals) racing for the same artifact build it once and never see half of it.

Nothing in an entry is trusted without checking: ``entry.json`` records the sha256 of every file the build
wrote, and every read verifies them (a process re-hashes an entry only when a file's size, times or inode
changed since it last verified it, so repeated reads in one session cost a ``stat`` per file). An entry whose
``entry.json`` is missing or foreign, whose files differ from their checksums (one flipped bit), or that has
files missing or added, is removed and rebuilt with a warning that names the entry and the file.

The cache folder is private: the default is a per-user folder (``$XDG_CACHE_HOME/vnet-accept`` or
``~/.cache/vnet-accept``, :func:`default_cache_root`) created with mode 0700, and a cache folder owned by
another user is refused (:class:`CacheDirError`): whoever can write there could plant an artifact the gate
would judge.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

ENTRY_FILE = "entry.json"
LOCK_TIMEOUT_S = 3600.0  # an OM build or a full-dataset preprocess can take long
ENTRY_VERSION = 2  # 2: sha256 of every file ("files")
_CHUNK = 1 << 20


class CacheDirError(PermissionError):
    """A cache folder that must not be used (owned by another user); the message says what to do."""

    def __init__(self, root: Path, message: str) -> None:
        super().__init__(errno.EPERM, message, str(root))
        self.message = message

    def __str__(self) -> str:
        return self.message


def default_cache_root() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/vnet-accept``, else ``~/.cache/vnet-accept``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says to ignore a relative value
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vnet-accept"


def prepare_cache_root(root: str | os.PathLike[str]) -> Path:
    """Create ``root`` (mode 0700) if needed and check that it is a folder of this user's; :class:`CacheDirError`
    (or another OSError naming the path) otherwise."""
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file, the artifact cache needs a folder", str(root))
    if not root.is_dir():
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(root, 0o700)
        except FileExistsError:
            pass
    owner = root.stat().st_uid
    me = os.geteuid() if hasattr(os, "geteuid") else owner
    if owner != me:
        raise CacheDirError(root, f"cache folder {root} belongs to {_user_name(owner)}, not to you ({_user_name(me)}): "
                                  "whoever can write there could plant artifacts the gate would judge; use a folder "
                                  "of your own (--vnet-cache-dir DIR or VNET_ACCEPT_CACHE=DIR)")
    return root


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def cache_key(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``inputs`` (sorted keys; paths and tuples normalised)."""
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=_canonical)
    return hashlib.sha256(blob.encode()).hexdigest()


def _canonical(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cache key input of type {type(obj).__name__} is not JSON-serialisable")


class ArtifactCache:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._prepared = False

    def prepare(self) -> Path:
        """Create and check the cache folder (see :func:`prepare_cache_root`); done once, before the first use."""
        if not self._prepared:
            prepare_cache_root(self.root)
            self._prepared = True
        return self.root

    def entry_dir(self, namespace: str, key: str) -> Path:
        if not namespace.replace("-", "").replace("_", "").isalnum() or not key.isalnum():
            raise ValueError(f"bad cache namespace/key {namespace!r}/{key!r}")  # keys never escape the root
        return self.root / namespace / key

    def get_or_build(self, namespace: str, inputs: dict[str, Any], build: Callable[[Path], None]) -> Path:
        """Return the entry directory for ``inputs``, building it with ``build(tmp_dir)`` if absent or if it does
        not match its checksums (rebuilt with a warning naming the entry)."""
        self.prepare()
        key = cache_key(inputs)
        final = self.entry_dir(namespace, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final) + ".lock", timeout=LOCK_TIMEOUT_S):
            if final.is_dir():
                problem = self._problem(final, inputs)
                if problem is None:
                    return final
                warnings.warn(f"vnet-accept cache entry {final} ({namespace}) is incomplete or stale: {problem}; "
                              "rebuilding it", stacklevel=2)
                _forget(final)
                shutil.rmtree(final, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=final.parent))
            try:
                start = time.perf_counter()
                build(tmp)
                entry = {"namespace": namespace, "key": key, "entry_version": ENTRY_VERSION, "inputs": inputs,
                         "build_seconds": round(time.perf_counter() - start, 3), "files": _hash_tree(tmp)}
                (tmp / ENTRY_FILE).write_text(json.dumps(entry, indent=2, default=_canonical) + "\n")
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _remember(final, entry["files"])
        return final

    @staticmethod
    def _problem(entry: Path, inputs: dict[str, Any]) -> str | None:
        """Why ``entry`` cannot be used for ``inputs`` (``None``: it can): entry.json, key, files and checksums."""
        try:
            meta = json.loads((entry / ENTRY_FILE).read_text())
        except (OSError, ValueError):
            return f"no readable {ENTRY_FILE} (incomplete or meddled with)"
        if not isinstance(meta, dict) or meta.get("key") != cache_key(inputs):
            return f"its {ENTRY_FILE} belongs to other inputs (stale or foreign)"
        recorded = meta.get("files")
        if not isinstance(recorded, dict):
            return f"its {ENTRY_FILE} has no file checksums (made by an older vnet-accept)"
        signature = _signature(entry)
        if signature is None:
            return "its files cannot be read"
        if _verified.get(str(entry)) == signature:
            return None
        actual = set(signature_names(signature))
        missing = sorted(set(recorded) - actual)
        if missing:
            return f"{missing[0]} is missing ({len(missing)} file(s) listed in {ENTRY_FILE} are gone)"
        extra = sorted(actual - set(recorded))
        if extra:
            return f"{extra[0]} was added after the build (not in {ENTRY_FILE})"
        for name in sorted(recorded):
            try:
                digest = _sha256(entry / name)
            except OSError as exc:
                return f"{name} cannot be read ({exc.strerror or exc})"
            if digest != recorded[name]:
                return f"{name} differs from its sha256 in {ENTRY_FILE} (changed or damaged on disk)"
        with _verified_lock:
            _verified[str(entry)] = signature
        return None


# --- checksums ------------------------------------------------------------------------------------------------
#: Entries this process verified, with the stat signature of their files then (size, mtime, ctime, inode).
_verified: dict[str, tuple[tuple[Any, ...], ...]] = {}
_verified_lock = threading.Lock()


def _files(root: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.parent == root and name == ENTRY_FILE:
                continue
            files.append(path)
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _hash_tree(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): _sha256(path) for path in _files(root)}


def _signature(root: Path) -> tuple[tuple[Any, ...], ...] | None:
    try:
        rows = []
        for path in _files(root):
            st = path.stat()
            rows.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        return tuple(rows)
    except OSError:
        return None


def signature_names(signature: tuple[tuple[Any, ...], ...]) -> list[str]:
    return [row[0] for row in signature]


def _remember(entry: Path, files: dict[str, str]) -> None:
    signature = _signature(entry)
    if signature is not None and sorted(signature_names(signature)) == sorted(files):
        with _verified_lock:
            _verified[str(entry)] = signature


def _forget(entry: Path) -> None:
    with _verified_lock:
        _verified.pop(str(entry), None)
