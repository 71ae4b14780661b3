"""A result folder against a reference run, tile by tile, matched by (UID, tile) - never by file position.

The accuracy chain pools voxels, so two tiles' outputs swapped on disk (a positional match gone wrong, SPEC §9)
cost a few points of error rate at most and nothing names them. Here every output named in the manifest is
compared with the reference run's output *for the same (UID, tile)* using :func:`compare_outputs` (the one
comparison of the gate); a tile that fails and instead matches another failing tile's reference is reported as
holding that tile's output, so the message names the swap.

Array convention: outputs ``(64, 80, 80, 2)`` float32 log-probabilities per tile; references the same, keyed by
``(uid, tile)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.compare import CompareResult, compare_outputs, find_swaps
from vnet_accept.tolerances import Tolerance

_MAX_NAMED = 6


@dataclass(frozen=True)
class TileMismatch:
    uid: str
    tile: int
    file: str
    summary: str  # the comparison's first line
    holds: tuple[str, int] | None  # the (uid, tile) whose reference this output matches, if any

    def line(self) -> str:
        if self.holds is not None:
            uid, tile = self.holds
            where = f"tile {tile}" if uid == self.uid else f"scan {uid}, tile {tile}"
            return f"{self.file} (scan {self.uid}, tile {self.tile}) holds the output of {where}"
        return f"{self.file} (scan {self.uid}, tile {self.tile}): {self.summary}"


@dataclass
class PerTileAgreement:
    """The outcome of :func:`compare_per_tile`."""

    results: str
    reference: str
    tolerance: Tolerance
    tiles: int
    worst_max_abs: float
    mismatches: list[TileMismatch] = field(default_factory=list)
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)  # "uid/tile" -> CompareResult.to_dict()

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.tiles > 0

    @property
    def swapped(self) -> list[TileMismatch]:
        return [m for m in self.mismatches if m.holds is not None]

    def headline(self) -> str:
        if self.passed:
            return (f"PASS all {self.tiles} tiles of {self.results} equal the reference run ({self.reference}) for "
                    f"the same (UID, tile): worst max|Δ| {self.worst_max_abs:.3g} ({self.tolerance.describe()})")
        if self.tiles == 0:
            return f"FAIL no tiles compared in {self.results}"
        cause = ""
        if self.swapped:
            pairs = ", ".join(f"scan {m.uid} tile {m.tile} <- tile {m.holds[1]}" for m in self.swapped[:4])
            cause = f" - outputs swapped between tiles ({pairs}): outputs matched to tiles by position?"
        return (f"FAIL {len(self.mismatches)} of {self.tiles} tiles differ from the reference run ({self.reference}) "
                f"for the same (UID, tile){cause}")

    def message(self) -> str:
        lines = [self.headline()]
        lines += [f"  {m.line()}" for m in self.mismatches[:_MAX_NAMED]]
        if len(self.mismatches) > _MAX_NAMED:
            lines.append(f"  … and {len(self.mismatches) - _MAX_NAMED} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"results": self.results, "reference": self.reference, "tolerance": self.tolerance.describe(),
                "tiles": self.tiles, "worst_max_abs": self.worst_max_abs, "passed": self.passed,
                "mismatches": [m.line() for m in self.mismatches]}


def compare_per_tile(results_dir: str | os.PathLike[str], manifest: Any,
                     reference: Mapping[tuple[str, int], np.ndarray], reference_name: str,
                     tolerance: Tolerance | None = None, layout: str | None = None) -> PerTileAgreement:
    """Compare each output under ``results_dir`` with ``reference[(uid, tile)]`` (see the module docstring).

    The folder is located and validated like the post-processor does it
    (:func:`~vnet_accept.results.layouts.locate_results`, :func:`~vnet_accept.results.layouts.validate_outputs`);
    a folder that cannot be judged raises its :class:`~vnet_accept.results.layouts.ResultsError`."""
    from vnet_accept.results.layouts import ResultsError, locate_results, map_output, validate_outputs

    tolerance = tolerance if tolerance is not None else Tolerance()

    folder = locate_results(results_dir, layout)
    labels = {e.stem: f"scan {e.uid}, tile {e.tile}" for e in manifest.entries}
    usable, problems = validate_outputs(folder, labels)
    if problems:
        raise ResultsError(folder.root, problems, folder.describe())
    agreement = PerTileAgreement(str(Path(results_dir)), reference_name, tolerance, 0, 0.0)
    failing: list[tuple[Any, np.ndarray, CompareResult]] = []
    for e in manifest.entries:
        if e.key not in reference:
            raise KeyError(f"the reference run has no output for scan {e.uid}, tile {e.tile}")
        obtained = np.asarray(map_output(usable[e.stem].path))
        result = compare_outputs(obtained[None], reference[e.key][None], tolerance,
                                 name=f"scan {e.uid} tile {e.tile} vs {reference_name}")
        agreement.tiles += 1
        agreement.worst_max_abs = max(agreement.worst_max_abs, result.max_abs)
        agreement.comparisons[f"{e.uid}/{e.tile}"] = result.to_dict()
        if not result.passed:
            failing.append((e, np.array(obtained), result))
    swaps = find_swaps({e.key: obtained for e, obtained, _ in failing}, reference, tolerance)
    for e, _, result in failing:
        agreement.mismatches.append(TileMismatch(e.uid, e.tile, usable[e.stem].path.name, result.summary(),
                                                 swaps.get(e.key)))
    return agreement
