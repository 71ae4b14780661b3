"""The batch-invariance verdict: graph evidence and measured outputs, either one failing fails."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vnet_accept.export.inspect import BnReport, OnnxInfo
from vnet_accept.export.invariance import batch_invariance_verdict


def _info(dependent: bool) -> OnnxInfo:
    bn = BnReport({"x": 1}, "k", "batch" if dependent else "running", dependent,
                  "24 training-form BatchNormalization: ..." if dependent else "24 inference BatchNormalization")
    return OnnxInfo("m.onnx", 11, 7, "p", (), (), {}, {}, bn)


ALONE = np.random.default_rng(0).normal(size=(8, 2, 4, 4, 2)).astype(np.float32)


def test_invariant_graph_and_outputs_pass():
    batched = {4: ALONE[:4] + 1e-7, 16: np.concatenate([ALONE, ALONE])}  # alone holds only the first 8
    v = batch_invariance_verdict(_info(False), ALONE, batched, 1e-5)
    assert v.passed and v.headline().startswith("PASS m.onnx: batch-invariant")


def test_a_training_form_graph_fails_even_when_a_few_samples_agree():
    v = batch_invariance_verdict(_info(True), ALONE, {4: ALONE[:4]}, 1e-5)
    assert not v.passed and v.headline().startswith("FAIL m.onnx: batch-dependent BN - 24 training-form")


def test_measured_dependence_fails_an_innocent_looking_graph():
    batched = {4: ALONE[:4], 8: ALONE + 0.02}
    v = batch_invariance_verdict(_info(False), ALONE, batched, 1e-5)
    assert not v.passed and v.worst_batch_size == 8 and "outputs depend on the batch" in v.headline()


def test_nan_counts_as_the_worst_difference():
    bad = ALONE[:4].copy()
    bad[0, 0, 0, 0, 0] = np.nan
    v = batch_invariance_verdict(_info(False), ALONE, {4: bad}, 1e-5)
    assert not v.passed and v.worst_max_abs == np.inf
    assert replace(v, worst_max_abs=0.0).passed
