"""The verdict of ``export.batch_invariant``: is an ONNX model's output independent of the rest of its batch?

Two pieces of evidence, both required (SPEC §2.1): the graph has no training-form ``BatchNormalization`` (read by
:func:`vnet_accept.export.inspect.inspect_onnx`), and measured outputs of samples run alone equal the same samples
run inside batches up to ``atol``: ``alone`` ``(M, D, H, W, 2)``; ``batched[n]`` ``(n, D, H, W, 2)``, the first
``n`` samples as one batch, compared on the first ``min(M, n)``. The graph alone can be wrong (a decomposed BN
the inspector does not recognise), and so can a measurement on a few samples, so either one failing fails the
criterion; the first line says which and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vnet_accept.export.inspect import OnnxInfo


@dataclass(frozen=True)
class BatchInvariance:
    path: str
    batch_dependent_graph: bool
    graph_explanation: str
    worst_max_abs: float
    worst_batch_size: int | None
    atol: float

    @property
    def passed(self) -> bool:
        return not self.batch_dependent_graph and self.worst_max_abs <= self.atol

    def headline(self) -> str:
        measured = (f"max |Δ log-prob| {self.worst_max_abs:.3g} between a sample alone and inside a batch of "
                    f"{self.worst_batch_size} (limit {self.atol:g})")
        if self.passed:
            return f"PASS {self.path}: batch-invariant - {measured}; {self.graph_explanation}"
        if self.batch_dependent_graph:
            return f"FAIL {self.path}: batch-dependent BN - {self.graph_explanation}; measured {measured}"
        return f"FAIL {self.path}: outputs depend on the batch - {measured} ({self.graph_explanation})"


def batch_invariance_verdict(info: OnnxInfo, alone: np.ndarray, batched: Mapping[int, np.ndarray],
                             atol: float) -> BatchInvariance:
    """Judge ``info`` (the inspected ONNX) and its measured runs (see the module docstring)."""
    if not batched:
        raise ValueError("no batched runs to compare with the samples run alone")
    worst, worst_n = -1.0, None
    for n, outputs in sorted(batched.items()):
        m = min(len(alone), len(outputs))  # the samples run both ways (alone may hold only the first few)
        with np.errstate(invalid="ignore"):
            diff = np.abs(outputs[:m].astype(np.float64) - alone[:m])
        value = float(np.max(np.where(np.isfinite(diff), diff, np.inf)))
        if value > worst:
            worst, worst_n = value, n
    return BatchInvariance(info.path, info.bn.batch_dependent, info.bn.explanation, worst, worst_n, atol)
