"""The one comparison used by every parity and batch-invariance check.

Arrays are VNet outputs ``(N, D, H, W, C)`` with the class axis last (C = 2); any shape works as long as the
class axis is the last one. Statistics are computed in float64 after casting both sides up (fp16 outputs are
never subtracted in fp16). What is measured:

* max and mean absolute difference; the worst voxel's index and both values there;
* cosine similarity and relative Euclidean distance ``||a - b|| / ||b||`` (msit's RED), over all values;
* arg-max label flips over the class axis (count and fraction of voxels); ties go to class 0 on both sides;
* NaN / Inf on either side (always a failure: a NaN difference never passes).

A failed comparison states the tolerance in force, what was measured, the worst voxel, and the loosest
tolerance that would have passed (Polygraphy's "minimum required tolerance").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vnet_accept.tolerances import Tolerance


@dataclass(frozen=True)
class CompareResult:
    name: str  # e.g. "onnxrt-cpu vs torch-cpu [bn_mode=running, fp32]"
    shape: tuple[int, ...]
    voxels: int
    max_abs: float
    mean_abs: float
    cosine: float
    red: float
    flips: int
    flip_fraction: float
    worst_index: tuple[int, ...]
    worst_obtained: float
    worst_expected: float
    nonfinite_obtained: int
    nonfinite_expected: int
    tolerance: Tolerance
    failures: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.failures

    def __bool__(self) -> bool:
        return self.passed

    def required_tolerance(self) -> dict[str, float]:
        """The loosest limits under which this comparison would have passed, keyed like :class:`Tolerance`'s fields
        (so ``Tolerance(**result.required_tolerance())`` passes on the same arrays when all values are finite)."""
        return {"max_abs": self.max_abs, "max_mean_abs": self.mean_abs, "max_flip_fraction": self.flip_fraction,
                "min_cosine": self.cosine, "max_red": self.red}

    def summary(self) -> str:
        """One line: verdict first, then the key numbers (pytest shows only a failure's first line)."""
        verdict = "PASSED" if self.passed else "FAILED"
        line = (f"{verdict} {self.name}: max|Δ|={self.max_abs:.3g}, flips {self.flips}/{self.voxels} "
                f"({self.flip_fraction:.3g}), cosine={self.cosine:.6f}, RED={self.red:.3g}")
        if not self.passed:
            line += f" — violates {'; '.join(self.failures)}"
        return line

    def report(self) -> str:
        req = self.required_tolerance()
        lines = [
            self.summary(),
            f"  tolerance in force: {self.tolerance.describe()}",
            f"  minimum required tolerance: max|Δ| <= {req['max_abs']:.3g}, mean|Δ| <= {req['max_mean_abs']:.3g}, "
            f"label flips <= {req['max_flip_fraction']:.3g} of voxels, cosine >= {req['min_cosine']:.6f}, "
            f"RED <= {req['max_red']:.3g}",
            f"  mean|Δ|={self.mean_abs:.3g} over {self.voxels} voxels × classes of shape {self.shape}",
            f"  worst voxel {self.worst_index}: obtained {self.worst_obtained:.7g}, expected {self.worst_expected:.7g}",
        ]
        if self.nonfinite_obtained or self.nonfinite_expected:
            lines.append(f"  non-finite values: obtained {self.nonfinite_obtained}, expected {self.nonfinite_expected}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        d["required_tolerance"] = self.required_tolerance()
        return d


def label_flips(obtained: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Boolean map (shape without the class axis) of voxels whose arg-max class differs; ties go to class 0."""
    return np.argmax(obtained, axis=-1) != np.argmax(expected, axis=-1)


def max_abs_diff(obtained: np.ndarray, expected: np.ndarray) -> float:
    """max |obtained - expected| over all values, in float64; a NaN or Inf on either side counts as ``inf``."""
    if np.shape(obtained) != np.shape(expected):
        raise ValueError(f"shape mismatch: {np.shape(obtained)} vs {np.shape(expected)}")
    if not np.size(obtained):
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(np.asarray(obtained, dtype=np.float64) - np.asarray(expected, dtype=np.float64))
    return float(np.max(np.where(np.isfinite(diff), diff, np.inf)))


def compare_outputs(obtained: np.ndarray, expected: np.ndarray, tolerance: Tolerance | None = None,
                    name: str = "obtained vs expected") -> CompareResult:
    """Compare two output arrays of equal shape (class axis last) under ``tolerance`` (default: fp32 parity)."""
    tolerance = tolerance or Tolerance()
    obtained, expected = np.asarray(obtained), np.asarray(expected)
    if obtained.shape != expected.shape:
        raise ValueError(f"{name}: shape mismatch, obtained {obtained.shape} vs expected {expected.shape}; "
                         "outputs must be (N, D, H, W, 2) on both sides (check the layout and batch size)")
    a = obtained.astype(np.float64, copy=False)
    b = expected.astype(np.float64, copy=False)
    nonfinite_a = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
    nonfinite_b = int(np.size(b) - np.count_nonzero(np.isfinite(b)))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf and overflowing norms are handled below
        diff = np.abs(a - b)
        if nonfinite_a or nonfinite_b:
            diff = np.where(np.isfinite(diff), diff, np.inf)  # NaN differences count as the worst possible
        flat = int(np.argmax(diff)) if diff.size else 0
        worst = tuple(int(i) for i in np.unravel_index(flat, diff.shape)) if diff.size else ()
        max_abs = float(diff.reshape(-1)[flat]) if diff.size else 0.0
        mean_abs = float(diff.mean()) if diff.size else 0.0
        norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
        dot = float(np.vdot(a, b))
        cosine = dot / (norm_a * norm_b) if norm_a and norm_b else (1.0 if norm_a == norm_b else 0.0)
        red = float(np.linalg.norm(a - b)) / norm_b if norm_b else (0.0 if not norm_a else math.inf)
    flips_map = label_flips(obtained, expected)
    flips, voxels = int(flips_map.sum()), int(flips_map.size)
    flip_fraction = flips / voxels if voxels else 0.0

    tol = tolerance
    failures = []
    if nonfinite_a or nonfinite_b:
        failures.append(f"finite values (obtained has {nonfinite_a} NaN/Inf, expected has {nonfinite_b})")
    if tol.max_abs is not None and not max_abs <= tol.max_abs:
        failures.append(f"max|Δ| {max_abs:.3g} > {tol.max_abs:g}")
    if tol.max_mean_abs is not None and not mean_abs <= tol.max_mean_abs:
        failures.append(f"mean|Δ| {mean_abs:.3g} > {tol.max_mean_abs:g}")
    if tol.max_flip_fraction is not None and not flip_fraction <= tol.max_flip_fraction:
        failures.append(f"flip fraction {flip_fraction:.3g} > {tol.max_flip_fraction:g}")
    if tol.min_cosine is not None and not cosine >= tol.min_cosine:
        failures.append(f"cosine {cosine:.6f} < {tol.min_cosine:g}")
    if tol.max_red is not None and not red <= tol.max_red:
        failures.append(f"RED {red:.3g} > {tol.max_red:g}")
    return CompareResult(
        name=name, shape=tuple(obtained.shape), voxels=voxels, max_abs=max_abs, mean_abs=mean_abs, cosine=cosine,
        red=red, flips=flips, flip_fraction=flip_fraction, worst_index=worst,
        worst_obtained=float(a.reshape(-1)[flat]) if a.size else 0.0,
        worst_expected=float(b.reshape(-1)[flat]) if b.size else 0.0,
        nonfinite_obtained=nonfinite_a, nonfinite_expected=nonfinite_b, tolerance=tol, failures=tuple(failures))


def find_swaps(failing: Mapping[Any, np.ndarray], reference: Mapping[Any, np.ndarray],
               tolerance: Tolerance) -> dict[Any, Any]:
    """For each key whose output failed against its own reference, the key of another *failing* tile whose
    reference it does match (its output landed under the wrong name); keys with no such match are left out."""
    holds = {}
    for key, obtained in failing.items():
        for other in failing:
            if other != key and compare_outputs(obtained[None], np.asarray(reference[other])[None], tolerance).passed:
                holds[key] = other
                break
    return holds
