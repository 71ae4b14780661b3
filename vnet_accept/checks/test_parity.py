"""Parity: ONNX Runtime matches the PyTorch reference in the same BN mode (SPEC §2.1, §3).

Per mode: one real-size tile at batch 1 (for the configured ``--bn-mode`` this is the exported artifact itself,
fixed 64×80×80 as ATC gets it; for the other modes the dynamic-shape export of the same checkpoint), and a
batch of 16 CT-like samples at reduced size. Tolerances: ``--parity-atol`` and ``--parity-max-flip-fraction``.
"""

from __future__ import annotations

import pytest

from vnet_accept.checks.conftest import PARITY_BATCH, size_label
from vnet_accept.compare import compare_outputs
from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.model.vnet import BN_MODES
from vnet_accept.runners.onnxrt import OnnxRuntimeRunner
from vnet_accept.runners.torch_runner import TorchRunner
from vnet_accept.tolerances import Tolerance


def _tolerance(gate_options) -> Tolerance:
    return Tolerance(max_abs=gate_options.parity_atol, max_flip_fraction=gate_options.parity_max_flip_fraction)


def _record(gate_record, cid, description, result, basis, artifacts=()):
    c = gate_record.criterion(cid, description, units="max |Δ log-prob|", threshold=result.tolerance.describe(),
                              basis=basis)
    for name, path in artifacts:
        c.artifact(name, path)
    c.measure(result.max_abs, result.passed, reason=result.summary() if not result.passed else
              f"flips {result.flips}/{result.voxels}, cosine {result.cosine:.7f}", comparison=result.to_dict())
    c.assert_passed(result.summary() + "\n" + result.report())


@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.criterion("parity.onnxrt_vs_torch.full_tile", "ONNX Runtime output equals PyTorch's for one "
                       "64×80×80 tile at batch 1, same BN mode")
def test_parity_full_tile(bn_mode, gate_options, onnx_export, vnet_model, full_tile_input, gate_record):
    is_artifact = bn_mode == gate_options.bn_mode
    onnx_path = onnx_export(bn_mode, spatial=TILE_SHAPE if is_artifact else None)
    with OnnxRuntimeRunner(onnx_path, bn_mode=bn_mode) as ort_runner, \
            TorchRunner(vnet_model, bn_mode=bn_mode) as torch_runner:
        feed = {"actual_input_1": full_tile_input}
        obtained = ort_runner.infer(feed)["output1"]
        expected = torch_runner.infer(feed)["output1"]
        basis = f"{ort_runner.describe()} vs {torch_runner.describe()}, bs1, 64×80×80, CT-like seeded input"
    result = compare_outputs(obtained, expected, _tolerance(gate_options),
                             name=f"onnxrt vs torch [bn_mode={bn_mode}, bs1, 64×80×80]")
    kind = "the exported artifact (fixed 64×80×80)" if is_artifact else "dynamic-shape export"
    _record(gate_record, f"parity.onnxrt_vs_torch.{bn_mode}.bs1_64x80x80",
            f"ONNX Runtime ({kind}) equals PyTorch, bn_mode={bn_mode}, one full tile", result, basis,
            artifacts=[("onnx", onnx_path)])


@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.criterion("parity.onnxrt_vs_torch.batch16", "ONNX Runtime equals PyTorch for a batch of 16 at "
                       "reduced size, same BN mode")
def test_parity_batch16_reduced(bn_mode, gate_options, reduced_runs, gate_record):
    runs = reduced_runs(bn_mode)
    size = size_label(bn_mode, "×")
    result = compare_outputs(runs["onnxrt"].batched[PARITY_BATCH], runs["torch"].batched[PARITY_BATCH],
                             _tolerance(gate_options), name=f"onnxrt vs torch [bn_mode={bn_mode}, bs16, {size}]")
    basis = f"{runs['onnxrt'].basis} vs {runs['torch'].basis}, bs{PARITY_BATCH}, {size}, CT-like seeded inputs"
    _record(gate_record, f"parity.onnxrt_vs_torch.{bn_mode}.bs16_{size.replace('×', 'x')}",
            f"ONNX Runtime equals PyTorch, bn_mode={bn_mode}, a batch of 16 at reduced size", result, basis)
