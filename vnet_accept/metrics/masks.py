"""Ground-truth lung masks for post-processing, each volume read once (not once per tile) and read ahead.

A :class:`MaskSource` hands out the normalised mask of a scan as ``(128, 160, 160)`` bool (True = lung) and a
tile's ``(64, 80, 80)`` crop of it. Volumes are kept in a small LRU cache, and :meth:`MaskSource.prefetch`
decodes the next scans' masks in a background thread while the caller scores the current one (zlib releases the
GIL, so on two cores the decoding hides behind the scoring). ``reads`` counts how often each volume was decoded.

Reading: the normalised masks are compressed MetaImages (``.mhd`` + ``.zraw``, one zlib stream), decoded by
SimpleITK after :func:`vnet_accept.data.mhd.parse_header` has validated the header. SimpleITK's bundled inflate
decodes a (128, 160, 160) int16 mask in about 2-4 ms where Python's :mod:`zlib` needs about 25 ms here. The
stream's Adler-32 (which SimpleITK does not check) is verified unless the caller checks the masks otherwise
(``verify_checksum``). The 0/1 check is a min/max instead of ``np.unique``: together several times faster than
:func:`vnet_accept.data.prepare.load_normalized_mask`, whose semantics (shape, values 0/1 only) it keeps.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vnet_accept.data.prepare import read_binary_mask
from vnet_accept.data.provenance import check_normalized_source
from vnet_accept.data.tiles import VOLUME_SHAPE, Tile
from vnet_accept.errors import DataError

#: Decoded volumes kept in memory (each 3.3 MB as bool).
DEFAULT_CACHE_SIZE = 4
#: Volumes decoded ahead of the one being scored.
DEFAULT_READ_AHEAD = 1


class MaskSource:
    """Normalised masks by series UID: from a dataset ``root`` (normalised layout) or from ``arrays``
    (``{uid: (128, 160, 160) bool}``, for tests and in-memory pipelines).

    ``volume(uid)`` -> ``(128, 160, 160)`` bool (read-only); ``tile(uid, k)`` -> its ``(64, 80, 80)`` view.
    ``verify_checksum``: see :func:`vnet_accept.data.prepare.read_binary_mask`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, arrays: Mapping[str, np.ndarray] | None = None,
                 cache_size: int = DEFAULT_CACHE_SIZE, read_ahead: int = DEFAULT_READ_AHEAD,
                 verify_checksum: bool = True) -> None:
        if (root is None) == (arrays is None):
            raise ValueError("give exactly one of root= and arrays=")
        self.root = Path(root) if root is not None else None
        self.read_ahead = max(0, read_ahead)
        self.verify_checksum = verify_checksum
        self.cache_size = max(1, cache_size, self.read_ahead + 1)
        self.reads: Counter[str] = Counter()
        self._arrays = dict(arrays) if arrays is not None else None
        self._paths: dict[str, Path] | None = None
        self._cache: OrderedDict[str, _Decoded] = OrderedDict()
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def describe(self) -> str:
        return f"normalised masks under {self.root}" if self.root is not None else "in-memory masks"

    # -- lookup -------------------------------------------------------------------------------------------------
    def path(self, uid: str) -> Path:
        """The mask header of ``uid`` (the dataset is discovered once)."""
        if self._paths is None:
            from vnet_accept.data.discovery import discover

            self._paths = dict(discover(self.root).require_normalized().masks)
        try:
            return self._paths[uid]
        except KeyError:
            raise DataError(f"scan {uid} has no normalised mask under {self.root} (expected "
                            f"normalized_lung_mask/{uid}.mhd); normalise it or fix --uids") from None

    def __contains__(self, uid: str) -> bool:
        if self._arrays is not None:
            return uid in self._arrays
        try:
            self.path(uid)
        except DataError:
            return False
        return True

    def volume(self, uid: str) -> np.ndarray:
        """``(128, 160, 160)`` bool mask of ``uid``; decoded at most once while it stays in the cache."""
        return self._decoded(uid).volume

    def tile(self, uid: str, tile: int | Tile) -> np.ndarray:
        """The ``(64, 80, 80)`` bool crop of ``uid``'s mask for ``tile`` (a read-only view)."""
        return (tile if isinstance(tile, Tile) else Tile(tile)).crop(self.volume(uid))

    def lung_voxels(self, uid: str, tile: int) -> int:
        """Foreground voxels of ``uid``'s mask in ``tile`` (counted once)."""
        decoded = self._decoded(uid)
        if tile not in decoded.counts:
            decoded.counts[tile] = int(np.count_nonzero(Tile(tile).crop(decoded.volume)))
        return decoded.counts[tile]

    def _decoded(self, uid: str) -> _Decoded:
        with self._lock:
            if uid in self._cache:
                self._cache.move_to_end(uid)
                return self._cache[uid]
            future = self._pending.pop(uid, None)
        decoded = future.result() if future is not None else self._load(uid)
        with self._lock:
            self._cache[uid] = decoded
            self._cache.move_to_end(uid)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return decoded

    def prefetch(self, uids: Iterable[str]) -> None:
        """Start decoding up to ``read_ahead`` of ``uids`` (the next ones the caller will ask for)."""
        if self._arrays is not None or self.read_ahead == 0:
            return
        with self._lock:
            wanted = [u for u in uids if u not in self._cache and u not in self._pending][:self.read_ahead]
            if not wanted:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vnet-accept-masks")
            for uid in wanted:
                self._pending[uid] = self._pool.submit(self._load, uid)

    def close(self) -> None:
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
            pool, self._pool = self._pool, None
        for future in pending:
            future.cancel()
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> MaskSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------------------------
    def _load(self, uid: str) -> _Decoded:
        if self._arrays is not None:
            try:
                array = np.asarray(self._arrays[uid])
            except KeyError:
                raise DataError(f"no mask for scan {uid} among the {len(self._arrays)} given") from None
            if array.shape != VOLUME_SHAPE:
                raise DataError(f"mask of {uid} has shape {array.shape}, expected {VOLUME_SHAPE} (z, y, x)")
            array = array.astype(bool, copy=False).view()  # a view: the caller's array stays writeable
        else:
            path = self.path(uid)
            check_normalized_source(self.root, uid)  # a mask of a since-rewritten raw scan is stale
            array = read_binary_mask(path, self.verify_checksum)
        decoded = _Decoded.of(array)
        with self._lock:
            self.reads[uid] += 1
        return decoded


class _Decoded:
    """One decoded mask volume and its tiles' lung-voxel counts (filled as they are asked for)."""

    __slots__ = ("volume", "counts")

    def __init__(self, volume: np.ndarray) -> None:
        self.volume, self.counts = volume, {}

    @classmethod
    def of(cls, volume: np.ndarray) -> _Decoded:
        volume.flags.writeable = False
        return cls(volume)
