"""Parity: ONNX Runtime matches the PyTorch reference in the same BN mode (SPEC §2.1, §3).

Per mode: one real-size tile at batch 1 (for the configured ``--bn-mode`` this is the exported artifact itself,
fixed 64×80×80 as ATC gets it; for the other modes the dynamic-shape export of the same checkpoint), and a
batch of 16 CT-like samples at reduced size. Tolerances: ``--parity-atol`` and ``--parity-max-flip-fraction``.
Judged by :func:`vnet_accept.judge.parity.parity`.
"""

from __future__ import annotations

import pytest

from vnet_accept.checks.conftest import PARITY_BATCH, size_label
from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.judge import parity
from vnet_accept.model.bn_modes import BN_MODES
from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME
from vnet_accept.runners.registry import create_runner
from vnet_accept.tolerances import parity_tolerance


def _tolerance(gate_options):
    return parity_tolerance(gate_options.parity_atol, gate_options.parity_max_flip_fraction)


@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.criterion("parity.onnxrt_vs_torch.{bn_mode}.bs1_64x80x80", "ONNX Runtime output equals PyTorch's for one "
                       "64×80×80 tile at batch 1, same BN mode")
def test_parity_full_tile(bn_mode, gate_options, onnx_export, vnet_model, full_tile_input, gate_record,
                          pytestconfig):
    from vnet_accept.plugin.progress import progress

    is_artifact = bn_mode == gate_options.bn_mode
    feed = {ONNX_INPUT_NAME: full_tile_input}
    with progress(pytestconfig, f"parity, one 64×80×80 tile, bn_mode={bn_mode}", total=2, unit="runner") as bar:
        with bar.running("the ONNX export"):
            onnx_path = onnx_export(bn_mode, spatial=TILE_SHAPE if is_artifact else None)
        with create_runner("ort-cpu", onnx=onnx_path, bn_mode=bn_mode) as ort_runner, \
                create_runner("torch-cpu", model=vnet_model, bn_mode=bn_mode) as torch_runner:
            with bar.running(ort_runner.name):
                obtained = ort_runner.infer(feed)[ONNX_OUTPUT_NAME]
            bar.update()
            with bar.running(torch_runner.name):
                expected = torch_runner.infer(feed)[ONNX_OUTPUT_NAME]
            bar.update()
            basis = f"{ort_runner.describe()} vs {torch_runner.describe()}, bs1, 64×80×80, CT-like seeded input"
    kind = "the exported artifact (fixed 64×80×80)" if is_artifact else "dynamic-shape export"
    gate_record.record(parity.parity(
        f"parity.onnxrt_vs_torch.{bn_mode}.bs1_64x80x80", f"ONNX Runtime ({kind}) equals PyTorch, bn_mode={bn_mode}, "
        "one full tile", obtained, expected, _tolerance(gate_options),
        name=f"onnxrt vs torch [bn_mode={bn_mode}, bs1, 64×80×80]", basis=basis), ("onnx", onnx_path))


@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.criterion(
    lambda bn_mode: f"parity.onnxrt_vs_torch.{bn_mode}.bs{PARITY_BATCH}_{size_label(bn_mode)}",
    "ONNX Runtime equals PyTorch for a batch of 16 at reduced size, same BN mode")
def test_parity_batch16_reduced(bn_mode, gate_options, reduced_runs, gate_record):
    runs = reduced_runs(bn_mode)
    size = size_label(bn_mode, "×")
    gate_record.record(parity.parity(
        f"parity.onnxrt_vs_torch.{bn_mode}.bs16_{size.replace('×', 'x')}",
        f"ONNX Runtime equals PyTorch, bn_mode={bn_mode}, a batch of 16 at reduced size",
        runs["onnxrt"].batched[PARITY_BATCH], runs["torch"].batched[PARITY_BATCH], _tolerance(gate_options),
        name=f"onnxrt vs torch [bn_mode={bn_mode}, bs16, {size}]",
        basis=f"{runs['onnxrt'].basis} vs {runs['torch'].basis}, bs{PARITY_BATCH}, {size}, CT-like seeded inputs"))
