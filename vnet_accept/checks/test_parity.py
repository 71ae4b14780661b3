"""Parity: ONNX Runtime matches the PyTorch reference in the same BN mode.

The file judged is the ONNX under test: ``--onnx FILE`` (the port's), judged in the BN semantics it implements
(measured: :func:`vnet_accept.judge.export.measure_bn_semantics`) against the checkpoint of ``--vnet-weights`` - one
full tile at batch 1, and one batch at its own size (``…bs2_64x80x80``; ``…bs4_16x32x32`` for dynamic spatial axes);
the other semantics have no file and are not judged, nor is anything without ``--vnet-weights`` (stand-in weights are
not the file's checkpoint). Without ``--onnx``, the gate's reference exports, per mode: one real-size tile at batch 1
(for the configured ``--bn-mode`` this is the exported artifact itself, fixed 64×80×80 as ATC gets it; for the other
modes the dynamic-shape export of the same checkpoint), and a batch of 16 CT-like samples at reduced size.

A failure names the first layer, in the port's module names, whose output diverges
(:func:`vnet_accept.judge.localise.localise`). Tolerances: ``--parity-atol`` and ``--parity-max-flip-fraction``.
Judged by :func:`vnet_accept.judge.parity.parity`.
"""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.checks.conftest import NO_WEIGHTS, PARITY_BATCH, run_file, size_label
from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.judge import localise, parity
from vnet_accept.model.bn_modes import BN_MODES
from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME
from vnet_accept.runners.registry import create_runner
from vnet_accept.tolerances import parity_tolerance


def _tolerance(gate_options):
    return parity_tolerance(gate_options.parity_atol, gate_options.parity_max_flip_fraction)


def _localised(criterion, onnx_path, model, bn_mode: str, inputs: np.ndarray, gate_options):
    """A failed parity criterion, with the first diverging layer named (only failures pay for it)."""
    if criterion.verdict != "fail":
        return criterion
    return localise.annotate(criterion, localise.localise(onnx_path, model, bn_mode, inputs,
                                                          atol=gate_options.parity_atol))


def _skip_other_semantics(cid: str, description: str, bn_mode: str, runs, uses_real_weights: bool,
                          gate_record) -> None:
    __tracebackhide__ = True
    if not uses_real_weights:
        gate_record.skip(cid, description, NO_WEIGHTS)
    if bn_mode != runs.implemented:
        gate_record.skip(cid, description, f"the submitted ONNX {runs.onnx.path} implements {runs.implemented} BN "
                         f"semantics ({runs.measurement.describe()}); its parity is judged in that semantics - no file "
                         f"implements {bn_mode} here")


@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.criterion("parity.onnxrt_vs_torch.{bn_mode}.bs1_64x80x80", "ONNX Runtime output equals PyTorch's for one "
                       "64×80×80 tile at batch 1, same BN mode", threshold=parity.parity_threshold,
                       units=parity.UNITS)
def test_parity_full_tile(bn_mode, gate_options, onnx_export, onnx_under_test, vnet_model, full_tile_input,
                          uses_real_weights, request, gate_record, pytestconfig):
    from vnet_accept.plugin.progress import progress

    cid = f"parity.onnxrt_vs_torch.{bn_mode}.bs1_64x80x80"
    if onnx_under_test.submitted:
        runs = request.getfixturevalue("onnx_runs")
        description = f"ONNX Runtime on the submitted ONNX equals PyTorch on the checkpoint, bn_mode={bn_mode}, one " \
                      "full tile"
        _skip_other_semantics(cid, description, bn_mode, runs, uses_real_weights, gate_record)
        onnx_path, input_name = onnx_under_test.path, onnx_under_test.input_name
        kind = f"the {onnx_under_test.label}"
    else:
        is_artifact = bn_mode == gate_options.bn_mode
        onnx_path = onnx_export(bn_mode, spatial=TILE_SHAPE if is_artifact else None)
        what = "the exported artifact (fixed 64×80×80)" if is_artifact else "a dynamic-shape export"
        description = f"ONNX Runtime ({what}) equals PyTorch, bn_mode={bn_mode}, one full tile"
        input_name = ONNX_INPUT_NAME
        kind = ("the reference export (no --onnx given), fixed 64×80×80 as ATC gets it" if is_artifact else
                f"the reference export's dynamic-shape twin in bn_mode={bn_mode} (no --onnx given)")
    with progress(pytestconfig, f"parity, one 64×80×80 tile, bn_mode={bn_mode}", total=2, unit="runner") as bar:
        if onnx_under_test.submitted and runs.spatial == TILE_SHAPE:
            obtained, ort_name = runs.alone()[:1], f"onnxrt-cpu [{runs.implemented}]"  # the tile, already run alone
        else:
            with create_runner("ort-cpu", onnx=onnx_path, bn_mode=bn_mode) as ort_runner, bar.running(ort_runner.name):
                obtained = (run_file(ort_runner, full_tile_input, 1, onnx_under_test) if onnx_under_test.submitted
                            else ort_runner.infer({input_name: full_tile_input})[ONNX_OUTPUT_NAME])
                ort_name = ort_runner.describe()
        bar.update()
        with create_runner("torch-cpu", model=vnet_model, bn_mode=bn_mode) as torch_runner, \
                bar.running(torch_runner.name):
            expected = torch_runner.infer({ONNX_INPUT_NAME: full_tile_input})[ONNX_OUTPUT_NAME]
            basis = f"{ort_name} on {kind} vs {torch_runner.describe()}, bs1, 64×80×80, CT-like seeded input"
        bar.update()
    criterion = parity.parity(cid, description, obtained, expected, _tolerance(gate_options),
                              name=f"onnxrt vs torch [bn_mode={bn_mode}, bs1, 64×80×80]", basis=basis)
    gate_record.record(_localised(criterion, onnx_path, vnet_model, bn_mode, full_tile_input, gate_options),
                       ("onnx", onnx_path))


@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.criterion(
    lambda bn_mode: f"parity.onnxrt_vs_torch.{bn_mode}.bs{PARITY_BATCH}_{size_label(bn_mode)}",
    "ONNX Runtime equals PyTorch for a batch (16 at reduced size; the submitted file's batch at its own size), same "
    "BN mode", threshold=parity.parity_threshold, units=parity.UNITS)
def test_parity_batch16_reduced(bn_mode, gate_options, onnx_under_test, vnet_model, onnx_export, reduced_runs,
                                reduced_inputs, uses_real_weights, request, gate_record):
    if onnx_under_test.submitted:
        runs = request.getfixturevalue("onnx_runs")
        if runs.batch_size < 2:  # its one-sample "batch" is the full-tile criterion's
            pytest.skip(f"{onnx_under_test.path} has a fixed batch size of 1: no batch to judge beyond "
                        "parity.onnxrt_vs_torch.<mode>.bs1_64x80x80; export with a dynamic batch axis")
        cid = f"parity.onnxrt_vs_torch.{bn_mode}.bs{runs.batch_size}_{runs.size}"
        description = (f"ONNX Runtime on the submitted ONNX equals PyTorch on the checkpoint, bn_mode={bn_mode}, one "
                       f"batch of {runs.batch_size}")
        _skip_other_semantics(cid, description, bn_mode, runs, uses_real_weights, gate_record)
        criterion = parity.parity(cid, description, runs.batched, runs.torch_batched(bn_mode), _tolerance(gate_options),
                                  name=f"onnxrt vs torch [bn_mode={bn_mode}, bs{runs.batch_size}, {runs.size}]",
                                  basis=f"{runs.basis}, bn_mode={bn_mode}")
        gate_record.record(_localised(criterion, runs.path, vnet_model, bn_mode, runs.inputs, gate_options),
                           ("onnx", runs.path))
        return
    runs = reduced_runs(bn_mode)
    size = size_label(bn_mode, "×")
    criterion = parity.parity(
        f"parity.onnxrt_vs_torch.{bn_mode}.bs16_{size.replace('×', 'x')}",
        f"ONNX Runtime equals PyTorch, bn_mode={bn_mode}, a batch of 16 at reduced size",
        runs["onnxrt"].batched[PARITY_BATCH], runs["torch"].batched[PARITY_BATCH], _tolerance(gate_options),
        name=f"onnxrt vs torch [bn_mode={bn_mode}, bs16, {size}]",
        basis=f"{runs['onnxrt'].basis} vs {runs['torch'].basis}, bs{PARITY_BATCH}, {size}, CT-like seeded inputs, "
              "reference export (no --onnx given)")
    onnx_path = onnx_export(bn_mode, spatial=None)
    gate_record.record(_localised(criterion, onnx_path, vnet_model, bn_mode, reduced_inputs(bn_mode)[:PARITY_BATCH],
                                  gate_options), ("onnx", onnx_path))
