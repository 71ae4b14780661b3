"""Benchmarks (``pytest -m perf --benchmark-enable tests/inference``): inference throughput per CPU backend.

One real 64×80×80 tile of the synthetic test set through each backend at batch 1, the checkpoint under test
(seeded stand-in: full width 16) in ``--bn-mode``, reported in tiles/s and GFLOP/s from the *counted* FLOP per
tile (:func:`vnet_accept.model.flops.gflop_per_tile`: 285.75 GFLOP at width 16). No threshold: the figures go
into the benchmark table (``extra_info``) and the JSON pytest-benchmark saves.
"""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.model.flops import gflop_per_tile
from vnet_accept.runners.registry import create_runner, get_backend, runner_width

pytestmark = pytest.mark.perf


@pytest.mark.parametrize("backend", ["ort-cpu", "torch-cpu"])
def test_inference_throughput(benchmark, backend, prepared_tiles, onnx_export, vnet_checkpoint, gate_options):
    bn_mode = gate_options.bn_mode
    if get_backend(backend).needs == "onnx":
        runner = create_runner(backend, onnx=onnx_export(bn_mode), bn_mode=bn_mode)
    else:
        runner = create_runner(backend, model=vnet_checkpoint.build_model(bn_mode), bn_mode=bn_mode)
    feed = {"actual_input_1": prepared_tiles.read_input(prepared_tiles.entries[0])[None, None]}
    benchmark.group = "inference, one 64x80x80 tile, bs1"
    with runner:
        out = benchmark.pedantic(lambda: runner.infer(feed)["output1"], rounds=3, iterations=1, warmup_rounds=1)
    assert out.shape == (1, 64, 80, 80, 2) and np.isfinite(out).all()
    width = runner_width(runner)
    benchmark.extra_info.update({"backend": runner.describe(), "width": width,
                                 "gflop_per_tile": round(gflop_per_tile(width), 3)})
    if benchmark.stats is not None:
        seconds = benchmark.stats.stats.min
        benchmark.extra_info.update({"tiles_per_s": round(1 / seconds, 4),
                                     "gflop_per_s": round(gflop_per_tile(width) / seconds, 2)})
