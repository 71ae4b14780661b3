"""``export.batch_invariant`` (vnet_accept.judge.export): graph evidence and measured outputs, either one failing
fails."""

from __future__ import annotations

import numpy as np

from vnet_accept.export.inspect import BnReport, OnnxInfo
from vnet_accept.judge.export import batch_invariant


def _info(dependent: bool) -> OnnxInfo:
    bn = BnReport({"x": 1}, "k", "batch" if dependent else "running", dependent,
                  "24 training-form BatchNormalization: ..." if dependent else "24 inference BatchNormalization")
    return OnnxInfo("m.onnx", 11, 7, "p", (), (), {}, {}, bn)


ALONE = np.random.default_rng(0).normal(size=(8, 2, 4, 4, 2)).astype(np.float32)


def _judge(info, batched, atol=1e-5):
    return batch_invariant(info, ALONE, batched, atol, basis="test")


def test_invariant_graph_and_outputs_pass():
    batched = {4: ALONE[:4] + 1e-7, 16: np.concatenate([ALONE, ALONE])}  # alone holds only the first 8
    c = _judge(_info(False), batched)
    assert c.verdict == "pass" and c.explanation().startswith("PASS m.onnx: batch-invariant")
    assert c.id == "export.batch_invariant" and c.measured < 1e-6 and c.threshold.startswith("<= 1e-05")


def test_a_training_form_graph_fails_even_when_a_few_samples_agree():
    c = _judge(_info(True), {4: ALONE[:4]})
    assert c.verdict == "fail" and c.explanation().startswith("FAIL m.onnx: batch-dependent BN - max |Δ log-prob| 0 ")
    assert "24 training-form" in c.explanation() and "fix: export with running statistics" in c.explanation()


def test_measured_dependence_fails_an_innocent_looking_graph():
    c = _judge(_info(False), {4: ALONE[:4], 8: ALONE + 0.02})
    assert c.verdict == "fail" and c.details["worst_batch_size"] == 8
    assert "outputs depend on the batch" in c.explanation()


def test_nan_counts_as_the_worst_difference():
    bad = ALONE[:4].copy()
    bad[0, 0, 0, 0, 0] = np.nan
    c = _judge(_info(False), {4: bad})
    assert c.verdict == "fail" and c.measured == np.inf


def test_the_contract_threshold_and_problems_read_as_text():
    """export.contract's threshold (and a mismatch) are written for a reader, not as a Python dict's repr."""
    from vnet_accept.export.inspect import TensorInfo
    from vnet_accept.judge.export import contract

    def info(batch):
        inputs = (TensorInfo("actual_input_1", "float32", (batch, 1, 64, 80, 80)),)
        outputs = (TensorInfo("output1", "float32", (batch, 64, 80, 80, 2)),)
        return OnnxInfo("port.onnx", 11, 7, "pytorch", inputs, outputs, {}, {}, BnReport({}, "none", "none", False, ""))

    c = contract(info("batch"))
    assert c.verdict == "pass" and c.threshold == ("input actual_input_1 float32 (N, 1, 64, 80, 80); output output1 "
                                                   "float32 (N, 64, 80, 80, 2); opset 11; N = dynamic batch")
    fixed = contract(info(1))
    assert fixed.verdict == "fail" and fixed.reason.startswith(
        "inputs: got actual_input_1 float32 (1, 1, 64, 80, 80), expected actual_input_1 float32 (N, 1, 64, 80, 80)")
