"""Do the network inputs on disk hold what they claim to, and do they cover the whole test split? (SPEC §4.3, §9)

Two checks of a prepared input folder, each returning a result with a verdict, the numbers and a first line that
names the cause (pytest's short summary shows only that line):

* :func:`check_inputs` recomputes every tile of a :class:`~vnet_accept.data.prepare.Manifest` from the
  normalised CT volumes with the one tile definition and input scaling (:mod:`vnet_accept.data.tiles`) and
  compares it with the ``<i>.bin`` on disk. The manifest's sha256 only says a file did not change since it was
  written; this says the file is *right* — a preprocessing step with a different mean/std, transposed axes or
  tiles written under each other's numbers passes the checksum but not this. A mismatching tile is diagnosed:
  an affine rescaling of the right values (the constants it implies are stated), the right values with axes
  permuted (the order is stated), another tile's input (named), or an unexplained difference (max |Δ|).
* :func:`check_uid_coverage` compares the test split's UIDs (read robustly) with the UIDs a run actually used
  (a manifest's, or a results folder's scans) and names what is missing; when the one missing is the last line
  of a UID file without a final newline, it says so (the port's reader drops that line: 133 of 134 scans).

Array convention: normalised CT ``(128, 160, 160)`` int16 HU (z, y, x); a tile input ``(64, 80, 80)`` float32.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.data.tiles import HU_CLIP, INPUT_SCALE, INPUT_SHIFT, TILE_SHAPE, Tile, ct_to_input
from vnet_accept.data.uids import UidList
from vnet_accept.tolerances import INPUT_ATOL

#: A tile whose values are an affine function of the right ones up to this residual (relative to the input
#: range) is reported as "rescaled" with the constants it implies.
_AFFINE_RESIDUAL = 1e-3
_AXES = "zyx"
_MAX_NAMED = 6


@dataclass(frozen=True)
class TileFinding:
    """A tile whose file differs from the recomputed input: ``kind`` is ``rescaled``, ``transposed``,
    ``other_tile``, ``different`` or ``unreadable``; ``detail`` says how."""

    uid: str
    tile: int
    file: str
    kind: str
    max_abs_diff: float | None
    detail: str

    def line(self) -> str:
        return f"{self.file} (scan {self.uid}, tile {self.tile}): {self.detail}"


@dataclass
class InputConsistency:
    """The outcome of :func:`check_inputs`."""

    directory: str
    dataset_root: str
    tiles_checked: int
    atol: float
    max_abs_diff: float
    findings: list[TileFinding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings and self.tiles_checked > 0

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        return counts

    def cause(self) -> str:
        """One phrase naming the commonest cause (the first line of the message leads with it)."""
        if not self.findings:
            return ""
        kinds = self.kinds()
        kind = max(kinds, key=kinds.get)
        first = next(f for f in self.findings if f.kind == kind)
        return {
            "rescaled": f"wrong input scaling: {first.detail}",
            "transposed": f"tile volumes written with their axes transposed: {first.detail}",
            "other_tile": f"tiles written under each other's numbers: {first.detail}",
            "unreadable": f"unreadable input files: {first.detail}",
        }.get(kind, f"inputs that are not the recomputed tiles: {first.detail}")

    def headline(self) -> str:
        if self.tiles_checked == 0:
            return f"FAIL no tiles checked in {self.directory}"
        if self.passed:
            return (f"PASS all {self.tiles_checked} inputs equal the tiles recomputed from the normalised volumes "
                    f"(max |Δ| {self.max_abs_diff:.3g} <= {self.atol:g})")
        return (f"FAIL {len(self.findings)} of {self.tiles_checked} inputs differ from the tiles recomputed from the "
                f"normalised volumes - {self.cause()}")

    def message(self) -> str:
        lines = [self.headline()]
        for kind, n in self.kinds().items():
            named = [f.line() for f in self.findings if f.kind == kind]
            more = f"; and {n - _MAX_NAMED} more" if n > _MAX_NAMED else ""
            lines.append(f"  {kind} ({n}): " + "; ".join(named[:_MAX_NAMED]) + more)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"directory": self.directory, "dataset_root": self.dataset_root, "tiles_checked": self.tiles_checked,
                "atol": self.atol, "max_abs_diff": self.max_abs_diff, "passed": self.passed, "kinds": self.kinds(),
                "findings": [asdict(f) for f in self.findings]}


def check_inputs(manifest: Any, dataset_root: str | os.PathLike[str] | None = None,
                 atol: float = INPUT_ATOL, entries: Iterable[Any] | None = None) -> InputConsistency:
    """Recompute each tile of ``manifest`` (default: every entry) from the normalised CT under ``dataset_root``
    (default: the manifest's ``dataset_root``) and compare it with its ``.bin`` (see the module docstring).

    Each scan's CT is read once. Raises :class:`~vnet_accept.errors.DataError` when a normalised CT is missing."""
    from vnet_accept.data.prepare import load_normalized_ct, read_input_bin
    from vnet_accept.errors import DataError

    root = Path(dataset_root if dataset_root is not None else manifest.data["dataset_root"])
    chosen = list(manifest.entries if entries is None else entries)
    by_uid: dict[str, list[Any]] = {}
    for e in chosen:
        by_uid.setdefault(e.uid, []).append(e)
    expected: dict[tuple[str, int], np.ndarray] = {}
    hu_tiles: dict[tuple[str, int], np.ndarray] = {}
    for uid in by_uid:
        ct = load_normalized_ct(root, uid)
        for k in range(8):
            hu_tiles[(uid, k)] = Tile(k).crop(ct)
            expected[(uid, k)] = ct_to_input(hu_tiles[(uid, k)])
    index = {_digest(v): key for key, v in expected.items()}
    result = InputConsistency(str(manifest.directory), str(root), 0, atol, 0.0)
    for e in chosen:
        path = manifest.directory / e.file
        result.tiles_checked += 1
        try:
            found = read_input_bin(path)
        except DataError as exc:
            result.findings.append(TileFinding(e.uid, e.tile, e.file, "unreadable", None, str(exc)))
            continue
        want = expected[(e.uid, e.tile)]
        with np.errstate(invalid="ignore", over="ignore"):
            diff = float(np.max(np.abs(found.astype(np.float64) - want))) if np.isfinite(found).all() else np.inf
        result.max_abs_diff = max(result.max_abs_diff, diff)
        if diff <= atol:
            continue
        result.findings.append(_diagnose(e, found, want, hu_tiles[(e.uid, e.tile)], index, diff))
    return result


def _digest(array: np.ndarray) -> bytes:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f4").tobytes()).digest()


def _diagnose(entry: Any, found: np.ndarray, want: np.ndarray, hu: np.ndarray, index: dict[bytes, tuple[str, int]],
              diff: float) -> TileFinding:
    def finding(kind: str, detail: str) -> TileFinding:
        return TileFinding(entry.uid, entry.tile, entry.file, kind, diff, detail)

    other = index.get(_digest(found))
    if other is not None and other != (entry.uid, entry.tile):
        where = f"tile {other[1]}" if other[0] == entry.uid else f"scan {other[0]}, tile {other[1]}"
        return finding("other_tile", f"holds the input of {where} (max |Δ| {diff:.3g})")
    flat = found.reshape(-1)
    for perm in itertools.permutations(range(3)):
        if perm == (0, 1, 2):
            continue
        candidate = np.ascontiguousarray(want.transpose(perm)).reshape(-1)
        if np.max(np.abs(flat.astype(np.float64) - candidate)) <= INPUT_ATOL:
            order = "".join(_AXES[p] for p in perm)
            shape = tuple(TILE_SHAPE[p] for p in perm)
            return finding("transposed", f"the tile written in ({', '.join(order)}) order, shape {shape}, instead "
                                         f"of (z, y, x) {TILE_SHAPE} (max |Δ| {diff:.3g})")
    affine = _affine_fit(found, hu)
    if affine is not None:
        shift, scale = affine
        return finding("rescaled", f"values are (clip(HU) + {shift:.6g}) / {scale:.6g} instead of (clip(HU) + "
                                   f"{INPUT_SHIFT}) / {INPUT_SCALE} (max |Δ| {diff:.3g})")
    return finding("different", f"max |Δ| {diff:.3g} from the recomputed tile; not a rescaling, transposition or "
                                "another tile's input")


def _affine_fit(found: np.ndarray, hu: np.ndarray) -> tuple[float, float] | None:
    """``(shift, scale)`` with ``found ≈ (clip(hu) + shift) / scale`` if the fit is exact up to
    :data:`_AFFINE_RESIDUAL` of the input range, else None."""
    clipped = np.clip(hu.astype(np.float64), *HU_CLIP).reshape(-1)
    y = found.astype(np.float64).reshape(-1)
    if not np.isfinite(y).all() or np.ptp(clipped) == 0:
        return None
    slope, intercept = np.polyfit(clipped, y, 1)
    if slope == 0:
        return None
    residual = np.max(np.abs(slope * clipped + intercept - y))
    if residual > _AFFINE_RESIDUAL * max(np.ptp(y), 1e-12):
        return None
    return float(intercept / slope), float(1.0 / slope)


# --- UID coverage ------------------------------------------------------------------------------------------------

@dataclass
class UidCoverage:
    """The outcome of :func:`check_uid_coverage`: how many of the split's UIDs a run used, and which are missing
    or extra."""

    source: str
    listed: int
    used: int
    missing: list[str]
    extra: list[str]
    last_line_dropped: bool  # the missing UID is the last line of a file lacking its final newline
    used_source: str

    @property
    def passed(self) -> bool:
        return not self.missing and not self.extra

    def headline(self) -> str:
        if self.passed:
            return f"PASS {self.used} of {self.listed} UIDs of {self.source} used ({self.used_source})"
        parts = []
        if self.missing:
            parts.append(f"missing {_names(self.missing)}")
        if self.extra:
            parts.append(f"{len(self.extra)} not in the split: {_names(self.extra)}")
        why = ("; the last line of the UID file lacks its final newline and the port's reader drops it - add the "
               "newline or read the file robustly" if self.last_line_dropped else "")
        return (f"FAIL {self.used - len(self.extra)} of {self.listed} UIDs of {self.source} used by "
                f"{self.used_source}: " + "; ".join(parts) + why)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def check_uid_coverage(split: UidList, used: Sequence[str], used_source: str,
                       uid_file: str | os.PathLike[str] | None = None) -> UidCoverage:
    """Compare the test split ``split`` with the UIDs ``used`` by a run (a manifest's or a results folder's
    scans, described by ``used_source``). ``uid_file`` (the split's file, if it is one) lets the failure say
    that a missing last UID is the port's dropped last line."""
    listed = list(split.uids)
    used_list = list(dict.fromkeys(used))
    missing = [u for u in listed if u not in set(used_list)]
    extra = [u for u in used_list if u not in set(listed)]
    dropped = False
    if missing == listed[-1:] and listed and uid_file is not None:
        try:
            data = Path(uid_file).read_bytes()
        except OSError:
            data = b""
        dropped = bool(data) and not data.endswith((b"\n", b"\r"))
    return UidCoverage(split.source, len(listed), len(used_list), missing, extra, dropped, used_source)


def port_style_uid_lines(text: str) -> list[str]:
    """The port's way of reading a UID file: every line up to the last newline, i.e. a final line without a
    newline is dropped (SPEC §4.3). Kept only to plant and explain the 133-of-134 defect."""
    return [line.strip() for line in text.split("\n")[:-1] if line.strip()]


def _names(uids: Sequence[str]) -> str:
    shown = ", ".join(uids[:3])
    return f"{len(uids)} ({shown}{', …' if len(uids) > 3 else ''})"
