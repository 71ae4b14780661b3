"""Benchmarks of the CPU runners at a reduced size (``tox -e perf``; deselected by default).

The real network (width 16, the checkpoint under test in ``--bn-mode``) on one ``1×1×16×48×48`` input — 9 % of a
tile, so a round takes well under a second on two cores — through ONNX Runtime, plain PyTorch, and PyTorch with
channels-last-3d and BN folded (the CUDA backend's CPU-capable switches). The figures (and GFLOP/s from the
*counted* FLOP of that input) go into pytest-benchmark's table and saved JSON; ``scripts/run_perf.py`` compares
them with this machine's saved baseline in ``benchmarks/`` and fails on a regression (see ``benchmarks/README.md``
for the threshold). Full-tile inference, normalisation, tiling and post-processing have their own benchmarks in
``tests/inference``, ``tests/data`` and ``tests/postprocess``.
"""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.model.flops import count_forward_flops

pytestmark = pytest.mark.perf

SPATIAL = (16, 48, 48)
ROUNDS = 5
GROUP = "CPU runners, 1x1x16x48x48, width 16"


@pytest.fixture(scope="module")
def bench_feed() -> dict[str, np.ndarray]:
    return {"actual_input_1": ct_like_batch(1, SPATIAL, seed=7)}


def _runner(kind: str, vnet_checkpoint, onnx_export, bn_mode: str):
    if kind == "ort-cpu":
        from vnet_accept.runners.onnxrt import OnnxRuntimeRunner

        return OnnxRuntimeRunner(onnx_export(bn_mode, spatial=None), name="ort-cpu", bn_mode=bn_mode)
    model = vnet_checkpoint.build_model(bn_mode)
    if kind == "torch-cpu":
        from vnet_accept.runners.torch_runner import TorchRunner

        return TorchRunner(model, bn_mode, name="torch-cpu")
    from vnet_accept.runners.torch_cuda import CudaOptions, TorchCudaRunner

    options = CudaOptions(channels_last=True, cudnn_benchmark=False, fold_bn=None, cuda_graph=False)
    return TorchCudaRunner(model, bn_mode, "cpu", options, name="torch-cpu-tuned")


@pytest.mark.parametrize("kind", ["ort-cpu", "torch-cpu", "torch-cpu-tuned"])
def test_cpu_runner_forward(benchmark, kind, bench_feed, vnet_checkpoint, onnx_export, gate_options):
    bn_mode = gate_options.bn_mode
    runner = _runner(kind, vnet_checkpoint, onnx_export, bn_mode)
    benchmark.group = GROUP
    with runner:
        out = benchmark.pedantic(lambda: runner.infer(bench_feed)["output1"], rounds=ROUNDS, iterations=1,
                                 warmup_rounds=1)
        described = runner.describe()
    assert out.shape == (1, *SPATIAL, 2) and np.isfinite(out).all()
    gflop = count_forward_flops(SPATIAL, vnet_checkpoint.width) / 1e9
    benchmark.extra_info.update({"runner": described, "spatial": list(SPATIAL), "gflop_per_forward": round(gflop, 3)})
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["gflop_per_s_best"] = round(gflop / benchmark.stats.stats.min, 2)
