"""GPU criteria (issue 6): the PyTorch CUDA backend computes what the CPU reference computes.

Marked ``gpu``; on a machine without CUDA every test skips with the reason (``torch.cuda.is_available()`` is
False). On a GPU host (``tox -e gpu``, or ``scripts/gpu_check.sh``):

* **parity** — CUDA fp32 (plain eager, and tuned: channels-last-3d, autotuning, BN folded for ``running``, CUDA
  graphs) equals ONNX Runtime on the CPU under the foundation's parity tolerance (``--parity-atol``,
  ``--parity-max-flip-fraction``), per BN mode, for one full tile and a batch of 16 at reduced size;
* **numerics** — every variant at every dtype against fp32 eager on the same GPU and batch: fp32 under the parity
  tolerance, TF32/fp16/bf16 under :data:`~vnet_accept.tolerances.REDUCED_PRECISION_TOLERANCE` (label
  flips and cosine);
* **batch invariance per dtype** — for ``running``/``instance``, each of 16 tiles alone equals the same tile in a
  batch of 16 under :func:`~vnet_accept.tolerances.gpu_invariance_tolerance` (fp32: ``--invariance-atol``);
* **finite outputs** — no NaN/Inf at any dtype, and the outputs are log-probabilities (log Σ exp = 0);
* CUDA graphs keep working when the batch size changes (one graph per size, eager beyond ``max_graphs``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vnet_accept.checks.conftest import PARITY_BATCH, size_label
from vnet_accept.compare import compare_outputs
from vnet_accept.data.tiles import TILE_SHAPE, ct_like_batch
from vnet_accept.gpu.sweep import variant_options
from vnet_accept.judge import parity
from vnet_accept.judge.criterion import judged
from vnet_accept.model.vnet import BN_MODES
from vnet_accept.results.inference import run_in_batches
from vnet_accept.runners.registry import create_runner
from vnet_accept.runners.torch_cuda import DTYPES, TorchCudaRunner, cuda_unavailable_reason
from vnet_accept.tolerances import (
    REDUCED_PRECISION_TOLERANCE,
    Tolerance,
    gpu_invariance_tolerance,
    parity_tolerance,
)

pytestmark = pytest.mark.gpu

VARIANTS = ("eager", "channels-last", "folded", "tuned")
NUMERICS_BATCH = 4
INVARIANCE_BATCH = 16
INVARIANT_MODES = ("running", "instance")
GPU_INPUT_SEED = 20240918
#: |log Σ_c exp(out_c)| allowed per dtype: the outputs must be log-probabilities.
LOGSUMEXP_ATOL = {"fp32": 1e-4, "tf32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}


@pytest.fixture(scope="session", autouse=True)
def cuda_device() -> str:
    """The GPU these tests run on, or a skip saying what is missing (first, before any costly fixture)."""
    reason = cuda_unavailable_reason()
    if reason:
        pytest.skip(reason)
    import torch

    return f"cuda:{torch.cuda.current_device()}"


@pytest.fixture(scope="session")
def gpu_tiles() -> np.ndarray:
    """16 seeded CT-like full tiles ``(16, 1, 64, 80, 80)``; numerics use the first 4."""
    return ct_like_batch(INVARIANCE_BATCH, TILE_SHAPE, seed=GPU_INPUT_SEED)


@pytest.fixture(scope="session")
def gpu_runs(vnet_model, cuda_device, gpu_tiles):
    """``gpu_runs(variant, dtype, bn_mode, n, batch_size)`` -> outputs of the first ``n`` tiles run ``batch_size``
    at a time, computed once per key (one runner per variant/dtype/mode)."""
    cache: dict[tuple, np.ndarray] = {}

    def run(variant: str, dtype: str, bn_mode: str, n: int, batch_size: int) -> tuple[np.ndarray, str]:
        key = (variant, dtype, bn_mode, n, batch_size)
        if key not in cache:
            options = variant_options(variant, dtype, cuda_device)
            with TorchCudaRunner(vnet_model, bn_mode, cuda_device, options) as runner:
                cache[key] = (run_in_batches(runner, gpu_tiles[:n], batch_size), runner.describe())
        return cache[key]

    return run


def _parity(gate_options) -> Tolerance:
    return parity_tolerance(gate_options.parity_atol, gate_options.parity_max_flip_fraction)


# What a criterion is held to, from the test's parameters and the gate's options: the tolerance its test judges with,
# stated in the report also where no GPU judged it.
def _numerics_tolerance(dtype: str, parity_atol: float, parity_max_flip_fraction: float) -> Tolerance:
    return parity_tolerance(parity_atol, parity_max_flip_fraction) if dtype == "fp32" else \
        REDUCED_PRECISION_TOLERANCE[dtype]


def _finite_threshold(dtype: str) -> str:
    return f"0 NaN/Inf, |log Σ exp| <= {LOGSUMEXP_ATOL[dtype]:g}"


# -- parity with the CPU reference ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def onnxrt_full_tile(onnx_export, gate_options, full_tile_input):
    """ONNX Runtime (CPU) on the full tile, per BN mode: the exported artifact for ``--bn-mode``, else the
    dynamic-shape export of the same checkpoint (as the foundation's parity checks do)."""
    cache: dict[str, tuple[np.ndarray, str]] = {}

    def get(bn_mode: str) -> tuple[np.ndarray, str]:
        if bn_mode not in cache:
            path = onnx_export(bn_mode, spatial=TILE_SHAPE if bn_mode == gate_options.bn_mode else None)
            with create_runner("ort-cpu", onnx=path, bn_mode=bn_mode) as runner:
                cache[bn_mode] = (runner.infer({"actual_input_1": full_tile_input})["output1"], runner.describe())
        return cache[bn_mode]

    return get


@pytest.mark.parametrize("variant", ["eager", "tuned"])
@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.criterion(
    "parity.onnxrt_vs_torch_cuda.{variant}.{bn_mode}.bs1_64x80x80",
    "PyTorch on CUDA (fp32) equals ONNX Runtime on the CPU for one 64×80×80 tile, same BN mode",
    threshold=parity.parity_threshold, units=parity.UNITS)
def test_cuda_fp32_matches_onnxrt_on_a_full_tile(bn_mode, variant, cuda_device, vnet_model, full_tile_input,
                                                 onnxrt_full_tile, gate_options, gate_record):
    expected, ort_basis = onnxrt_full_tile(bn_mode)
    options = variant_options(variant, "fp32", cuda_device)
    with TorchCudaRunner(vnet_model, bn_mode, cuda_device, options) as runner:
        obtained = runner.infer({"actual_input_1": full_tile_input})["output1"]
        basis = f"{runner.describe()} vs {ort_basis}, bs1, 64×80×80, CT-like seeded input"
    gate_record.record(parity.parity(
        f"parity.onnxrt_vs_torch_cuda.{variant}.{bn_mode}.bs1_64x80x80", f"PyTorch on CUDA ({variant}, fp32) equals "
        f"ONNX Runtime on the CPU, bn_mode={bn_mode}, one full tile", obtained, expected, _parity(gate_options),
        name=f"torch-cuda {variant} fp32 vs onnxrt-cpu [bn_mode={bn_mode}, bs1]", basis=basis))


@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.criterion(
    lambda bn_mode: f"parity.onnxrt_vs_torch_cuda.tuned.{bn_mode}.bs{PARITY_BATCH}_{size_label(bn_mode)}",
    "PyTorch on CUDA (fp32, tuned) equals ONNX Runtime for a batch of 16 at reduced size, same BN mode",
    threshold=parity.parity_threshold, units=parity.UNITS)
def test_cuda_fp32_matches_onnxrt_on_a_batch_of_16(bn_mode, cuda_device, vnet_model, onnx_export, reduced_inputs,
                                                   gate_options, gate_record):
    batch = reduced_inputs(bn_mode)[:PARITY_BATCH]
    with create_runner("ort-cpu", onnx=onnx_export(bn_mode, spatial=None), bn_mode=bn_mode) as ort:
        expected = ort.infer({"actual_input_1": batch})["output1"]
        ort_basis = ort.describe()
    options = variant_options("tuned", "fp32", cuda_device)
    with TorchCudaRunner(vnet_model, bn_mode, cuda_device, options) as runner:
        obtained = runner.infer({"actual_input_1": batch})["output1"]
        basis = f"{runner.describe()} vs {ort_basis}, bs{PARITY_BATCH}, {size_label(bn_mode, '×')}"
    size = size_label(bn_mode)
    gate_record.record(parity.parity(
        f"parity.onnxrt_vs_torch_cuda.tuned.{bn_mode}.bs{PARITY_BATCH}_{size}", f"PyTorch on CUDA (tuned, fp32) "
        f"equals ONNX Runtime, bn_mode={bn_mode}, a batch of {PARITY_BATCH}", obtained, expected,
        _parity(gate_options), name=f"torch-cuda tuned fp32 vs onnxrt-cpu [bn_mode={bn_mode}, bs{PARITY_BATCH}]",
        basis=basis))


# -- every variant and dtype against fp32 eager ------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.criterion(
    "numerics.torch_cuda.{dtype}.{variant}.{bn_mode}",
    "a CUDA variant/dtype agrees with fp32 eager PyTorch on the GPU",
    threshold=lambda dtype, parity_atol, parity_max_flip_fraction: _numerics_tolerance(
        dtype, parity_atol, parity_max_flip_fraction).describe(), units=parity.STATISTICS["flip_fraction"])
def test_every_variant_and_dtype_agrees_with_fp32_eager(dtype, variant, gpu_runs, gate_options, gate_record):
    bn_mode = gate_options.bn_mode
    expected, ref_basis = gpu_runs("eager", "fp32", bn_mode, NUMERICS_BATCH, NUMERICS_BATCH)
    obtained, basis = gpu_runs(variant, dtype, bn_mode, NUMERICS_BATCH, NUMERICS_BATCH)
    tol = _numerics_tolerance(dtype, gate_options.parity_atol, gate_options.parity_max_flip_fraction)
    gate_record.record(parity.parity(
        f"numerics.torch_cuda.{dtype}.{variant}.{bn_mode}", f"PyTorch on CUDA, {variant} at {dtype}, agrees with "
        f"fp32 eager on the same GPU (bn_mode={bn_mode})", obtained, expected, tol,
        name=f"torch-cuda {variant} {dtype} vs fp32 eager [bn_mode={bn_mode}, bs{NUMERICS_BATCH}]",
        basis=f"{basis} vs {ref_basis}, {NUMERICS_BATCH} CT-like 64×80×80 tiles", statistic="flip_fraction"))


# -- batch invariance and finite outputs per dtype ---------------------------------------------------------------------

@pytest.mark.parametrize("bn_mode", INVARIANT_MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.criterion(
    "batch_invariance.torch-cuda-{dtype}.{bn_mode}.bs16",
    "on the GPU, a tile's output is the same alone and in a batch of 16, per dtype",
    threshold=lambda dtype, invariance_atol: gpu_invariance_tolerance(dtype, invariance_atol).describe(),
    units=parity.UNITS)
def test_batch_invariance_per_dtype(dtype, bn_mode, gpu_runs, gate_options, gate_record):
    batched, basis = gpu_runs("tuned", dtype, bn_mode, INVARIANCE_BATCH, INVARIANCE_BATCH)
    alone, _ = gpu_runs("tuned", dtype, bn_mode, INVARIANCE_BATCH, 1)
    tol = gpu_invariance_tolerance(dtype, gate_options.invariance_atol)
    gate_record.record(parity.batch_invariance(
        f"batch_invariance.torch-cuda-{dtype}.{bn_mode}.bs{INVARIANCE_BATCH}",
        f"PyTorch on CUDA at {dtype}, bn_mode={bn_mode}: each of {INVARIANCE_BATCH} tiles gives the same output "
        "alone and in the batch", batched, alone, tol, name=f"torch-cuda {dtype} [bn_mode={bn_mode}] bs16 vs bs1",
        basis=f"{basis}, {INVARIANCE_BATCH} CT-like 64×80×80 tiles"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.criterion(
    "finite.torch-cuda-{dtype}.{bn_mode}",
    "no NaN/Inf in the GPU outputs, which are log-probabilities", threshold=_finite_threshold,
    units="non-finite values")
def test_outputs_are_finite_log_probabilities(dtype, gpu_runs, gate_options, gate_record):
    bn_mode = gate_options.bn_mode
    outputs, basis = gpu_runs("tuned", dtype, bn_mode, INVARIANCE_BATCH, INVARIANCE_BATCH)
    bad = int(outputs.size - np.count_nonzero(np.isfinite(outputs)))
    logsumexp = np.logaddexp(outputs[..., 0].astype(np.float64), outputs[..., 1].astype(np.float64))
    worst = float(np.nanmax(np.abs(logsumexp))) if not bad else float("inf")
    passed = bad == 0 and worst <= LOGSUMEXP_ATOL[dtype]
    gate_record.record(judged(
        f"finite.torch-cuda-{dtype}.{bn_mode}", f"PyTorch on CUDA at {dtype}: outputs finite and log-probabilities",
        passed, measured=bad, units="non-finite values",
        threshold=_finite_threshold(dtype),
        basis=f"{basis}, {INVARIANCE_BATCH} tiles at bs{INVARIANCE_BATCH}",
        reason=f"{bad} of {outputs.size} values NaN/Inf; max |log Σ exp| {worst:.3g}", max_abs_logsumexp=worst))


# -- CUDA graphs when the batch size changes ---------------------------------------------------------------------------

@pytest.mark.criterion(
    "cuda_graphs.torch_cuda.{bn_mode}",
    "CUDA graphs follow a changing batch size: one graph per shape, eager beyond max_graphs, same numbers",
    threshold="0", units="problems")
def test_graphs_follow_changing_batch_sizes(cuda_device, vnet_model, gpu_runs, gpu_tiles, gate_options, gate_record):
    """One graph per batch shape up to ``max_graphs``; other shapes run eagerly; every path gives the same numbers."""
    bn_mode = gate_options.bn_mode
    expected, ref_basis = gpu_runs("eager", "fp32", bn_mode, NUMERICS_BATCH, NUMERICS_BATCH)
    options = replace(variant_options("tuned", "fp32", cuda_device), max_graphs=1)
    problems: list[str] = []
    with TorchCudaRunner(vnet_model, bn_mode, cuda_device, options) as runner:
        first = runner.infer({"actual_input_1": gpu_tiles[:NUMERICS_BATCH]})["output1"]
        if bn_mode != "batch":  # a smaller batch only means the same per-sample numbers without batch statistics
            short = runner.infer({"actual_input_1": gpu_tiles[:NUMERICS_BATCH - 1]})["output1"]
            result = compare_outputs(short, expected[:NUMERICS_BATCH - 1], _parity(gate_options), name="eager batch")
            if not result.passed:
                problems.append(result.report().splitlines()[0])
        again = runner.infer({"actual_input_1": gpu_tiles[:NUMERICS_BATCH]})["output1"]
        shapes = runner.graph_batch_shapes()
        if shapes != [(NUMERICS_BATCH, 1, *TILE_SHAPE)]:
            problems.append(f"graphs captured for {shapes}, expected one for {(NUMERICS_BATCH, 1, *TILE_SHAPE)}")
        eager_expected = 0 if bn_mode == "batch" else 1
        if runner.eager_batches != eager_expected:
            problems.append(f"{runner.eager_batches} batches ran eagerly, expected {eager_expected}")
        basis = f"{runner.describe()} (max_graphs=1) vs {ref_basis}, {NUMERICS_BATCH} CT-like 64×80×80 tiles"
    for name, out in (("first graph replay", first), ("second graph replay", again)):
        result = compare_outputs(out, expected, _parity(gate_options), name=name)
        if not result.passed:
            problems.append(result.report().splitlines()[0])
    gate_record.record(judged(
        f"cuda_graphs.torch_cuda.{bn_mode}", "CUDA graphs follow a changing batch size: one graph per shape, eager "
        "beyond max_graphs, the same numbers on every path", not problems, measured=len(problems), units="problems",
        threshold="0", basis=basis, reason="; ".join(problems) or "graph, eager and replayed batches agree",
        problems=problems))
