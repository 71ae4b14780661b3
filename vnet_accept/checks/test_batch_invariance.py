"""Batch invariance: a sample's output must not depend on what else is in its batch (SPEC §2.1).

For ``running`` and ``instance`` the gate requires max |Δ| <= ``--invariance-atol`` and no label flips between
a sample run alone and inside a batch of 4/8/16/32 (the batch's first 8 samples are compared). For ``batch``
(the reference port's semantics) the outputs *do* depend on the batch; the check asserts that the gate detects
it and records the measured divergence. Judged by :mod:`vnet_accept.judge.parity`.

These judge the reference semantics (PyTorch) and the gate's reference exports (ONNX Runtime). With ``--onnx FILE``
the ONNX Runtime rows are not judged: the file under test is judged by ``export.batch_invariant``
(:mod:`vnet_accept.checks.test_export`), and the gate's own exports are not what is filed.
"""

from __future__ import annotations

import pytest

from vnet_accept.checks.conftest import ALONE_SAMPLES, INVARIANCE_BATCH_SIZES, size_label
from vnet_accept.judge import parity
from vnet_accept.tolerances import invariance_tolerance

INVARIANT_MODES = ("running", "instance")
RUNNERS = ("onnxrt", "torch")


def _whose(runner: str) -> str:
    return ", reference export (no --onnx given)" if runner == "onnxrt" else ", PyTorch on the checkpoint"


def _skip_reference_onnx(runner: str, cid: str, description: str, submission_settings, gate_record) -> None:
    __tracebackhide__ = True
    if runner == "onnxrt" and submission_settings.onnx is not None:
        gate_record.skip(cid, description, f"--onnx {submission_settings.onnx} is the ONNX under test: its batch "
                         "invariance is export.batch_invariant; ONNX Runtime on the gate's reference exports is not "
                         "what is filed")


@pytest.mark.parametrize("batch_size", INVARIANCE_BATCH_SIZES)
@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("bn_mode", INVARIANT_MODES)
@pytest.mark.criterion(
    "batch_invariance.{runner}.{bn_mode}.bs{batch_size}",
    "a sample's output is the same alone and inside a batch", threshold=parity.invariance_threshold,
    units=parity.UNITS)
def test_batch_invariant(bn_mode, runner, batch_size, reduced_runs, gate_options, submission_settings, gate_record):
    n = min(batch_size, ALONE_SAMPLES)
    _skip_reference_onnx(runner, f"batch_invariance.{runner}.{bn_mode}.bs{batch_size}", "a sample's output is the "
                         "same alone and inside a batch", submission_settings, gate_record)
    runs = reduced_runs(bn_mode)[runner]
    gate_record.record(parity.batch_invariance(
        f"batch_invariance.{runner}.{bn_mode}.bs{batch_size}",
        f"{runner}, bn_mode={bn_mode}: the first {n} samples of a batch of {batch_size} give the same output alone "
        "and in the batch", runs.batched[batch_size][:n], runs.alone[:n],
        invariance_tolerance(gate_options.invariance_atol), name=f"{runner} [bn_mode={bn_mode}] bs{batch_size} vs bs1",
        basis=f"{runs.basis}, {size_label(bn_mode)}, CT-like seeded inputs{_whose(runner)}"))


@pytest.mark.parametrize("batch_size", INVARIANCE_BATCH_SIZES)
@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.criterion("batch_dependence_detected.{runner}.bs{batch_size}", "the gate detects batch-dependent BN",
                        threshold=parity.dependence_threshold, units=parity.UNITS)
def test_batch_mode_dependence_is_detected(runner, batch_size, reduced_runs, gate_options, submission_settings,
                                           gate_record):
    n = min(batch_size, ALONE_SAMPLES)
    _skip_reference_onnx(runner, f"batch_dependence_detected.{runner}.bs{batch_size}", "the gate detects "
                         "batch-dependent BN", submission_settings, gate_record)
    runs = reduced_runs("batch")[runner]
    gate_record.record(parity.batch_dependence(
        f"batch_dependence_detected.{runner}.bs{batch_size}",
        f"{runner}, bn_mode=batch (the reference port's semantics): outputs depend on the batch, and the gate sees it "
        f"at batch {batch_size}", runs.batched[batch_size][:n], runs.alone[:n],
        invariance_tolerance(gate_options.invariance_atol), name=f"{runner} [bn_mode=batch] bs{batch_size} vs bs1",
        basis=f"{runs.basis}, {size_label('batch')}, CT-like seeded inputs{_whose(runner)}", batch_size=batch_size))
