"""Content-addressed artifact cache: ONNX exports, prepared data, OM files built on demand.

An entry is a directory ``<root>/<namespace>/<key>/`` where ``key`` is the sha256 of the canonical JSON of
everything that determines the artifact (input file hashes, options, library versions). It is built in a
temporary sibling directory and renamed into place, under a ``FileLock`` on ``<key>.lock``, so pytest-xdist
workers (or two terminals) racing for the same artifact build it once and never see half of it. A directory
without its ``entry.json`` (a crash between rename and write cannot happen, but a user may have meddled) is
treated as a miss, removed and rebuilt, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

ENTRY_FILE = "entry.json"
LOCK_TIMEOUT_S = 3600.0  # an OM build or a full-dataset preprocess can take long


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

    def entry_dir(self, namespace: str, key: str) -> Path:
        if not namespace.replace("-", "").replace("_", "").isalnum() or not key.isalnum():
            raise ValueError(f"bad cache namespace/key {namespace!r}/{key!r}")  # keys never escape the root
        return self.root / namespace / key

    def get_or_build(self, namespace: str, inputs: dict[str, Any], build: Callable[[Path], None]) -> Path:
        """Return the entry directory for ``inputs``, building it with ``build(tmp_dir)`` if absent."""
        key = cache_key(inputs)
        final = self.entry_dir(namespace, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final) + ".lock", timeout=LOCK_TIMEOUT_S):
            if final.is_dir():
                if self._valid(final, inputs):
                    return final
                warnings.warn(f"vnet-accept cache entry {final} is incomplete or stale; rebuilding it",
                              stacklevel=2)
                shutil.rmtree(final, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=final.parent))
            try:
                start = time.perf_counter()
                build(tmp)
                entry = {"namespace": namespace, "key": key, "inputs": inputs,
                         "build_seconds": round(time.perf_counter() - start, 3)}
                (tmp / ENTRY_FILE).write_text(json.dumps(entry, indent=2, default=_canonical) + "\n")
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    @staticmethod
    def _valid(entry: Path, inputs: dict[str, Any]) -> bool:
        try:
            meta = json.loads((entry / ENTRY_FILE).read_text())
        except (OSError, ValueError):
            return False
        return meta.get("key") == cache_key(inputs)
