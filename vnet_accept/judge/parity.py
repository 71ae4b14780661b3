"""Two runs of the network against each other: parity between runners in the same BN semantics, and batch
(in)variance of one runner (SPEC §2.1).

Arrays are VNet outputs ``(N, D, H, W, 2)`` float32 log-probabilities, class axis last; every comparison is
:func:`vnet_accept.compare.compare_outputs` (float64 after casting up, NaN never passes). A failure's message is the
comparison's report: the tolerance in force, the worst voxel, and the tolerance that would have passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vnet_accept.compare import CompareResult, compare_outputs
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.tolerances import Tolerance, invariance_tolerance, parity_tolerance

UNITS = "max |Δ log-prob|"


#: What a comparison criterion reports as its measured value: the largest difference (fp32, where log-probabilities
#: agree to round-off) or the fraction of flipped labels (reduced precision, where differences are large by design).
STATISTICS = {"max_abs": UNITS, "flip_fraction": "label-flip fraction"}


def parity_threshold(parity_atol: float, parity_max_flip_fraction: float) -> str:
    """What ``parity.*`` is held to (``--parity-atol``, ``--parity-max-flip-fraction``)."""
    return parity_tolerance(parity_atol, parity_max_flip_fraction).describe()


def invariance_threshold(invariance_atol: float) -> str:
    """What ``batch_invariance.*`` is held to (``--invariance-atol``)."""
    return invariance_tolerance(invariance_atol).describe()


def dependence_threshold(invariance_atol: float) -> str:
    """What ``batch_dependence_detected.*`` needs to see: a difference beyond the invariance limit."""
    return f"> {invariance_atol:g} or any label flip (dependence detected)"


def _from_comparison(cid: str, description: str, result: CompareResult, passed: bool, basis: str, reason: str,
                     threshold: str | None = None, statistic: str = "max_abs", **details: Any) -> Criterion:
    return judged(cid, description, passed, measured=getattr(result, statistic), units=STATISTICS[statistic],
                  threshold=threshold or result.tolerance.describe(), basis=basis, reason=reason,
                  message=result.summary() + "\n" + result.report(), comparison=result.to_dict(), **details)


def parity(cid: str, description: str, obtained: np.ndarray, expected: np.ndarray, tolerance: Tolerance, *,
           name: str, basis: str, statistic: str = "max_abs") -> Criterion:
    """``parity.*`` (and ``numerics.*``): ``obtained`` (e.g. ONNX Runtime) equals ``expected`` (PyTorch, the
    reference) under ``tolerance``; ``statistic`` is the measured value recorded (:data:`STATISTICS`)."""
    result = compare_outputs(obtained, expected, tolerance, name=name)
    reason = result.summary() if not result.passed else (
        f"flips {result.flips}/{result.voxels} ({result.flip_fraction:.3g}), max|Δ| {result.max_abs:.3g}, cosine "
        f"{result.cosine:.7f}")
    return _from_comparison(cid, description, result, result.passed, basis, reason, statistic=statistic)


def batch_invariance(cid: str, description: str, batched: np.ndarray, alone: np.ndarray, tolerance: Tolerance, *,
                     name: str, basis: str) -> Criterion:
    """``batch_invariance.*``: samples run inside a batch (``batched``) give what they give alone (``alone``),
    compared on the samples both hold."""
    n = min(len(batched), len(alone))
    result = compare_outputs(batched[:n], alone[:n], tolerance, name=name)
    reason = result.summary() if not result.passed else f"flips {result.flips}/{result.voxels}"
    return _from_comparison(cid, description, result, result.passed, basis, reason)


def batch_dependence(cid: str, description: str, batched: np.ndarray, alone: np.ndarray, tolerance: Tolerance, *,
                     name: str, basis: str, batch_size: int) -> Criterion:
    """``batch_dependence_detected.*``: for batch-statistics BN the outputs *must* depend on the batch; the gate
    passes when it sees the dependence (max |Δ| beyond ``tolerance`` or a label flip)."""
    n = min(len(batched), len(alone))
    result = compare_outputs(batched[:n], alone[:n], tolerance, name=name)
    detected = not result.passed
    reason = (f"batch-dependent: max|Δ|={result.max_abs:.3g}, {result.flips}/{result.voxels} labels flip between "
              f"bs{batch_size} and bs1") if detected else \
        "NOT detected: batch-mode outputs were identical alone and in a batch"
    return _from_comparison(cid, description, result, detected, basis, reason,
                            threshold=dependence_threshold(tolerance.max_abs))
