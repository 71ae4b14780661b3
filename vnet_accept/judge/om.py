"""The ``om.*`` criteria: ATC's conversion, the results belong to the tiles judged, the OM's outputs against ONNX
Runtime tile by tile, its batch invariance, and which BN semantics it implements (SPEC §2.1, §5). Pure functions
over arrays and parsed files, so they run the same on live and replayed results.

Arrays are VNet outputs ``(D, H, W, 2)`` per tile (or ``(N, D, H, W, 2)``), float32 log-probabilities, class
axis last; every comparison goes through :func:`vnet_accept.compare.compare_outputs` (float64 after
casting up).

The limits and why they are what they are: :mod:`vnet_accept.tolerances` (OM parity, OM batch invariance, the
BN-semantics margin).

**BN semantics.** The OM's outputs for one complete batch are compared with ONNX Runtime under ``batch``,
``instance`` and ``running`` exports of the same checkpoint; the closest (smallest RED) wins when the runner-up
is at least :data:`BN_SEMANTICS_MARGIN` times farther. At batch 1, ``batch`` and ``instance`` are the same
computation and count as one candidate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vnet_accept.compare import CompareResult, compare_outputs, find_swaps, label_flips, max_abs_diff
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.reference import OM_DTYPE
from vnet_accept.tolerances import (
    BN_SEMANTICS_MARGIN,
    OM_INVARIANCE_MAX_FLIP_FRACTION,
    Tolerance,
    om_tolerance,
)

BN_CANDIDATES = ("batch", "instance", "running")
MERGED_AT_BS1 = "batch=instance"


# --- OM vs ONNX, tile by tile ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TileParity:
    stem: str
    label: str  # "scan <uid>, tile <k>"
    result: CompareResult

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {"stem": self.stem, "tile": self.label, "passed": r.passed, "cosine": r.cosine, "red": r.red,
                "max_abs": r.max_abs, "flips": r.flips, "flip_fraction": r.flip_fraction,
                "failures": list(r.failures)}


@dataclass(frozen=True)
class ParityVerdict:
    """OM vs ONNX Runtime on the same tiles: every tile must pass ``tolerance``; ``overall`` pools them."""

    batch_size: int
    tiles: tuple[TileParity, ...]
    overall: CompareResult
    tolerance: Tolerance
    swapped: tuple[tuple[str, str], ...] = ()  # (tile, tile whose reference its output matches)

    @property
    def passed(self) -> bool:
        return all(t.result.passed for t in self.tiles)

    @property
    def worst(self) -> TileParity:
        return max(self.tiles, key=lambda t: (not t.result.passed, t.result.red))

    def explanation(self) -> str:
        failed = [t for t in self.tiles if not t.result.passed]
        w = self.worst.result
        head = (f"{'PASS' if self.passed else 'FAIL'} OM bs{self.batch_size} vs ONNX: {len(failed)} of "
                f"{len(self.tiles)} tiles outside {self.tolerance.describe()}; worst ({self.worst.label}) "
                f"cosine {w.cosine:.6f}, RED {w.red:.3g}, max|Δ| {w.max_abs:.3g}, flips {w.flip_fraction:.3g}")
        if self.swapped:
            pairs = ", ".join(f"{a} holds the output of {b}" for a, b in self.swapped[:4])
            head += f" — outputs swapped between tiles ({pairs}): outputs matched to tiles by position?"
        elif failed:
            head += f" — violates {'; '.join(w.failures)}"
        return head

    def criterion_details(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "tiles": [t.to_dict() for t in self.tiles],
                "comparison": self.overall.to_dict(), "tolerance": self.tolerance.describe(),
                "required_tolerance": self.overall.required_tolerance()}


def om_parity(om: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], labels: Mapping[str, str],
              batch_size: int, tolerance: Tolerance | None = None, name: str = "om vs onnxrt") -> ParityVerdict:
    """Compare the OM's output of every stem in ``reference`` (each ``(64, 80, 80, 2)``) with it."""
    tolerance = tolerance or om_tolerance()
    stems = [s for s in reference if s in om]
    if not stems:
        raise ValueError("no tile has both an OM output and a reference output")
    tiles = tuple(TileParity(s, labels.get(s, s), compare_outputs(om[s], reference[s], tolerance,
                                                                  name=f"{name} {labels.get(s, s)}"))
                  for s in stems)
    overall = compare_outputs(np.stack([om[s] for s in stems]), np.stack([reference[s] for s in stems]),
                              tolerance, name=f"{name} bs{batch_size}, {len(stems)} tiles")
    swaps = find_swaps({t.stem: om[t.stem] for t in tiles if not t.result.passed}, reference, tolerance)
    swapped = tuple((labels.get(a, a), labels.get(b, b)) for a, b in swaps.items())
    return ParityVerdict(batch_size, tiles, overall, tolerance, swapped)


# --- OM batch invariance ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InvarianceVerdict:
    """bs1 vs bs<N> outputs of the same tiles: label flips (judged) and max |Δ log-prob| (reported)."""

    batch_size: int
    tiles: int
    voxels: int
    flips: int
    max_abs: float
    nonfinite: int
    tiles_with_flips: tuple[tuple[str, int], ...]  # (label, flips), most first, at most 10
    limit: float

    @property
    def flip_fraction(self) -> float:
        return self.flips / self.voxels if self.voxels else 0.0

    @property
    def passed(self) -> bool:
        return self.tiles > 0 and not self.nonfinite and self.flip_fraction <= self.limit

    def explanation(self) -> str:
        worst = f"; most in {self.tiles_with_flips[0][0]} ({self.tiles_with_flips[0][1]})" \
            if self.tiles_with_flips else ""
        nonfinite = f"; {self.nonfinite} NaN/Inf values" if self.nonfinite else ""
        return (f"{'PASS' if self.passed else 'FAIL'} OM bs1 vs bs{self.batch_size}: {self.flips}/{self.voxels} "
                f"voxels change label ({self.flip_fraction:.3g}; limit {self.limit:g}) over {self.tiles} tiles, max "
                f"|Δ log-prob| {self.max_abs:.3g}{worst}{nonfinite}")

    def criterion_details(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "tiles": self.tiles, "voxels": self.voxels, "flips": self.flips,
                "flip_fraction": self.flip_fraction, "max_abs": self.max_abs, "nonfinite": self.nonfinite,
                "tiles_with_flips": [list(t) for t in self.tiles_with_flips], "limit": self.limit}


def om_batch_invariance(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], batch_size: int,
                        limit: float = OM_INVARIANCE_MAX_FLIP_FRACTION) -> InvarianceVerdict:
    """``pairs`` yields ``(label, bs1 output, bs<N> output)`` per tile (read lazily: a full test split is GBs)."""
    tiles = voxels = flips = nonfinite = 0
    max_abs = 0.0
    per_tile: list[tuple[str, int]] = []
    for label, a, b in pairs:
        if a.shape != b.shape:
            raise ValueError(f"{label}: output shapes differ, {a.shape} vs {b.shape}")
        flipped = label_flips(b, a)
        n = int(np.count_nonzero(flipped))
        finite = np.isfinite(a).all() and np.isfinite(b).all()
        if not finite:
            nonfinite += int(np.size(a) - np.count_nonzero(np.isfinite(a)) + np.size(b)
                             - np.count_nonzero(np.isfinite(b)))
        else:
            max_abs = max(max_abs, max_abs_diff(b, a))
        tiles, voxels, flips = tiles + 1, voxels + flipped.size, flips + n
        if n:
            per_tile.append((label, n))
    per_tile.sort(key=lambda t: -t[1])
    return InvarianceVerdict(batch_size, tiles, voxels, flips, max_abs, nonfinite, tuple(per_tile[:10]), limit)


# --- which BN semantics the OM implements ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BnSemanticsFinding:
    """Distances of the OM's outputs to ONNX Runtime under each BN semantics; the verdict is a clear winner."""

    batch_size: int
    tiles: int
    distances: dict[str, CompareResult]  # candidate -> comparison (OM vs that reference)
    closest: str
    runner_up: str | None
    ratio: float  # runner-up RED / closest RED (inf when the closest is exact)
    margin: float
    matches: bool  # the closest is within the OM parity tolerance, not only the nearest
    tolerance: Tolerance

    @property
    def clear(self) -> bool:
        return self.runner_up is None or self.ratio >= self.margin

    @property
    def batch_dependent(self) -> bool:
        """The OM clearly normalises with its batch's statistics: a tile's output depends on its batch company."""
        return self.clear and self.closest == "batch"

    @property
    def passed(self) -> bool:
        """Identified, and a semantics a filed port may have: a clear winner that is not ``batch``."""
        return self.clear and not self.batch_dependent

    def explanation(self) -> str:
        shown = ", ".join(f"{mode} {r.red:.3g}" for mode, r in sorted(self.distances.items(), key=lambda kv: kv[1].red))
        ratio = "∞" if math.isinf(self.ratio) else f"{self.ratio:.2f}"
        if self.clear:
            fit = ("and within the OM parity tolerance" if self.matches else
                   f"but outside the OM parity tolerance ({'; '.join(self.distances[self.closest].failures)}): the "
                   "nearest of the three, not a match — e.g. running statistics other than the checkpoint's (the "
                   "port's export overwrites them with one random batch's)")
            found = (f"OM implements {self.closest.upper()} BN: RED to ONNX Runtime {shown} (bs{self.batch_size}, "
                     f"{self.tiles} tiles); runner-up {self.runner_up} {ratio}× farther (margin {self.margin:g}×), "
                     f"{fit}")
            if self.batch_dependent:
                return (f"FAIL the OM is BATCH-DEPENDENT: it normalises with the statistics of the batch it is given, "
                        f"so a tile's labels depend on the other tiles of its batch. {found}. Convert an export in "
                        "running (or instance) semantics")
            return f"PASS {found}"
        return (f"FAIL AMBIGUOUS BN semantics: RED {shown} (bs{self.batch_size}, {self.tiles} tiles); {self.closest} "
                f"and {self.runner_up} are within {ratio}× of each other (a clear winner needs {self.margin:g}×)")

    def criterion_details(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "tiles": self.tiles, "closest": self.closest,
                "runner_up": self.runner_up, "ratio": None if math.isinf(self.ratio) else self.ratio,
                "margin": self.margin, "clear": self.clear, "matches": self.matches,
                "distances": {mode: {"red": r.red, "cosine": r.cosine, "max_abs": r.max_abs, "flips": r.flips,
                                     "flip_fraction": r.flip_fraction, "within_om_tolerance": r.passed}
                              for mode, r in self.distances.items()},
                "tolerance": self.tolerance.describe()}


def bn_semantics(om: np.ndarray, references: Mapping[str, np.ndarray], batch_size: int,
                 margin: float = BN_SEMANTICS_MARGIN, tolerance: Tolerance | None = None) -> BnSemanticsFinding:
    """``om`` and every reference ``(N, D, H, W, 2)`` for the same N tiles, which the OM ran as one batch of
    ``batch_size`` (N = ``batch_size``). At batch 1 ``batch`` and ``instance`` merge into one candidate."""
    tolerance = tolerance or om_tolerance()
    unknown = set(references) - set(BN_CANDIDATES)
    if unknown:
        raise ValueError(f"unknown BN semantics {sorted(unknown)}; candidates are {BN_CANDIDATES}")
    refs = dict(references)
    if batch_size == 1 and "batch" in refs and "instance" in refs:
        refs[MERGED_AT_BS1] = refs.pop("instance")
        refs.pop("batch")
    if not refs:
        raise ValueError("no reference outputs to compare the OM with")
    distances = {mode: compare_outputs(om, ref, tolerance, name=f"om vs onnxrt [bn_mode={mode}]")
                 for mode, ref in refs.items()}
    ranked = sorted(distances, key=lambda mode: distances[mode].red)
    closest = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    best = distances[closest].red
    ratio = math.inf if runner_up is None else (distances[runner_up].red / best if best > 0 else math.inf)
    return BnSemanticsFinding(batch_size, int(om.shape[0]), distances, closest, runner_up, ratio, margin,
                              distances[closest].passed, tolerance)


# --- the criteria -------------------------------------------------------------------------------------------------

#: What ``om.atc.bs<N>`` requires of ATC's run.
ATC_THRESHOLD = "exit status 0, 'ATC run success', no error code"


def parity_threshold(om_max_flip_fraction: float) -> str:
    """``om.parity``'s limits (``--om-max-flip-fraction``): the fp16 limits of
    :func:`~vnet_accept.tolerances.om_tolerance`."""
    return om_tolerance(om_max_flip_fraction).describe()


def batch_invariance_threshold(om_invariance_max_flip_fraction: float) -> str:
    return f"≤ {om_invariance_max_flip_fraction:g}"


def bn_semantics_threshold(bn_semantics_margin: float) -> str:
    return f"running or instance, runner-up ≥ {bn_semantics_margin:g}× farther (relative Euclidean distance)"


def atc(record: Any, batch_size: int, *, live: bool, om: Any = None, log_tail_lines: int = 20) -> Criterion:
    """``om.atc.bs<N>``: ATC exited 0, printed its success line and no error code (and, run here, wrote the OM).
    ``record`` is an :class:`~vnet_accept.ascend.results_folder.AtcRecord`."""
    log = record.log
    exit_text = ("exit status not recorded (judged by the console; append `echo \"ATC exit status $?\"`)"
                 if record.exit_status is None else f"exit status {record.exit_status}")
    codes = ", ".join(m.describe() for m in log.errors) or "no error code"
    reason = (f"{'PASS' if record.succeeded else 'FAIL'} ATC bs{batch_size}: {exit_text}; "
              f"{'success line' if log.success_line else 'no success line'}"
              f"{'; failure line' if log.failure_line else ''}; {codes}")
    tail = "\n".join(record.text.strip().splitlines()[-log_tail_lines:])
    return judged(f"om.atc.bs{batch_size}", f"ATC converts the ONNX into an OM for bs{batch_size}: exit status 0 and "
                  "the success line" + (" and the OM on disk" if live else ""), record.succeeded,
                  measured=record.exit_status, units="exit status", threshold=ATC_THRESHOLD,
                  basis=f"{record.path.name} ({'run here' if live else 'console copied from the host'})",
                  reason=reason, message=reason + "\nlog tail:\n" + tail, error_codes=list(log.error_codes),
                  warning_codes=list(log.warning_codes), warnings=[m.describe() for m in log.warnings],
                  log=str(record.path), om=str(om) if om else None)


def inputs_match(check: Any, *, basis: str, **details: Any) -> Criterion:
    """``om.inputs_match``: the NPU results were computed from the tiles the gate judges with (sha256 of every
    input); ``check`` is an :class:`~vnet_accept.ascend.results_folder.InputsCheck`. Unverifiable: not judged."""
    description = "the NPU results were computed from the tiles the gate judges with (sha256 of every input)"
    passed = None if check.status == "unverified" else check.status == "match"
    return judged("om.inputs_match", description, passed, measured=len(check.differing), units="tiles differing",
                  threshold="0", basis=basis, reason=check.describe(), message=check.describe(),
                  differing=list(check.differing[:50]), checked=check.checked, **details)


def parity(om: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], labels: Mapping[str, str],
           batch_size: int, tolerance: Tolerance, *, basis: str, tiles_asked: int, operators: str | None = None,
           **details: Any) -> Criterion:
    """``om.parity.om_vs_onnx.bs<N>``: every tile's OM output within ``tolerance`` of ONNX Runtime's; swapped tiles
    are named. ``operators``: what msit/ait ``debug compare``'s per-operator CSV says (the first operator below
    :data:`~vnet_accept.tolerances.OP_MIN_COSINE`, :mod:`vnet_accept.ascend.op_compare`), named in a failure's
    first line."""
    verdict = om_parity(om, reference, labels, batch_size, tolerance)
    explanation = verdict.explanation()
    if operators and not verdict.passed:
        explanation += f" — {operators}"
    return judged(f"om.parity.om_vs_onnx.bs{batch_size}", f"the OM at bs{batch_size} ({OM_DTYPE}) equals ONNX Runtime "
                  f"(fp32) on each of the first {tiles_asked} tiles: {tolerance.describe()}", verdict.passed,
                  measured=verdict.worst.result.red, units="RED (worst tile)", threshold=tolerance.describe(),
                  basis=basis, reason=explanation, message=explanation + "\n" + verdict.worst.result.report(),
                  operators=operators, **verdict.criterion_details(), **details)


def batch_invariance(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], batch_size: int, limit: float, *,
                     basis: str) -> Criterion:
    """``om.batch_invariance.bs1_vs_bs<N>``: each tile's labels at bs<N> equal those at bs1."""
    verdict = om_batch_invariance(pairs, batch_size, limit)
    return judged(f"om.batch_invariance.bs1_vs_bs{batch_size}", f"each tile's labels from the OM at bs{batch_size} "
                  f"equal those at bs1 (at most {limit:g} of the voxels differ)", verdict.passed,
                  measured=verdict.flip_fraction, units="label flip fraction",
                  threshold=batch_invariance_threshold(limit),
                  basis=f"{basis}, {verdict.tiles} tiles", reason=verdict.explanation(),
                  message=verdict.explanation(), **verdict.criterion_details())


def bn_semantics_criterion(om: np.ndarray, references: Mapping[str, np.ndarray], batch_size: int, margin: float,
                           tolerance: Tolerance, *, basis: str, **details: Any) -> Criterion:
    """``om.bn_semantics``: which BN semantics the OM implements - the closest of ONNX Runtime's ``batch``,
    ``instance`` and ``running`` exports when the runner-up is ``margin`` times farther (else ambiguous, a fail)."""
    finding = bn_semantics(om, references, batch_size, margin, tolerance)
    measured = finding.closest if finding.clear else f"ambiguous ({finding.closest}/{finding.runner_up})"
    if finding.batch_dependent:
        measured = "batch (batch-dependent)"
    return judged("om.bn_semantics", "which BN semantics the OM implements: its outputs for one batch against ONNX "
                  "Runtime under the batch, instance and running exports of the checkpoint; a clear winner is "
                  f"{margin:g}× closer (RED) than the runner-up, and not batch (batch-dependent)", finding.passed,
                  measured=measured, units="BN semantics",
                  threshold=bn_semantics_threshold(margin),
                  basis=basis, reason=finding.explanation(), message=finding.explanation(),
                  **finding.criterion_details(), **details)
