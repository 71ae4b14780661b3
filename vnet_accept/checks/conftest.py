"""Shared, session-cached runs for the parity and batch-invariance checks.

CPU time is the budget here (one full 64×80×80 tile costs 1.5-2 s on 2 quiet cores), so every sample is run once
per (runner, BN mode, batching) and the parity and invariance checks read the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from vnet_accept.data.tiles import TILE_SHAPE, ct_like_batch
from vnet_accept.model.vnet import BN_MODES
from vnet_accept.results.inference import run_in_batches
from vnet_accept.runners.registry import create_runner

#: Reduced spatial size of the batched CPU checks, per BN mode: the smallest each semantics is well defined at.
#: ``running`` has no statistics to compute (1×1×1 at the bottleneck is fine); ``batch`` needs more than one
#: value per channel for a sample alone (1×1×2); ``instance`` normalises each sample over its own voxels, and at
#: 1×1×2 float32 rounding differences between batch sizes were amplified to 1.3e-5 by normalising over two
#: values — a property of the tiny size, not of the model — so it gets 1×2×2 (16×32×32, measured 9.5e-7).
REDUCED_SPATIAL = {"running": (16, 16, 16), "batch": (16, 16, 32), "instance": (16, 32, 32)}
INVARIANCE_BATCH_SIZES = (4, 8, 16, 32)
#: Samples compared alone vs in a batch: the first 8 of every batch (of 4: its 4). Running every sample of the
#: batch of 32 alone too would add 24 forward passes per runner and mode and judge nothing new.
ALONE_SAMPLES = 8
PARITY_BATCH = 16
INPUT_SEED = 20240917


@dataclass
class ModeRuns:
    """Outputs of one runner in one BN mode: ``alone`` (samples 0..ALONE_SAMPLES-1, each by itself) and
    ``batched[n]`` (samples 0..n-1 run as one batch), all (n, D, H, W, 2)."""

    runner: str
    basis: str
    spatial: tuple[int, int, int]
    alone: np.ndarray
    batched: dict[int, np.ndarray] = field(default_factory=dict)


def size_label(bn_mode: str, sep: str = "x") -> str:
    return sep.join(map(str, REDUCED_SPATIAL[bn_mode]))


@pytest.fixture(scope="session")
def reduced_inputs():
    """``reduced_inputs(bn_mode)``: 32 seeded CT-like samples (32, 1, D, H, W) at the mode's reduced size."""
    cache: dict[tuple, np.ndarray] = {}

    def get(bn_mode: str) -> np.ndarray:
        spatial = REDUCED_SPATIAL[bn_mode]
        if spatial not in cache:
            cache[spatial] = ct_like_batch(max(INVARIANCE_BATCH_SIZES), spatial, seed=INPUT_SEED)
        return cache[spatial]

    return get


@pytest.fixture(scope="session")
def full_tile_input() -> np.ndarray:
    return ct_like_batch(1, TILE_SHAPE, seed=INPUT_SEED + 1)


@pytest.fixture(scope="session")
def reduced_runs(onnx_export, vnet_model, reduced_inputs, pytestconfig):
    """``reduced_runs(bn_mode) -> {"onnxrt": ModeRuns, "torch": ModeRuns}``, computed once per mode, with a progress
    line (samples done per runner, the elapsed time while a batch computes)."""
    from vnet_accept.plugin.progress import progress

    cache: dict[str, dict[str, ModeRuns]] = {}
    per_runner = ALONE_SAMPLES + sum(INVARIANCE_BATCH_SIZES)

    def get(bn_mode: str) -> dict[str, ModeRuns]:
        if bn_mode not in cache:
            assert bn_mode in BN_MODES
            inputs = reduced_inputs(bn_mode)
            with progress(pytestconfig, f"parity and batch-invariance runs, bn_mode={bn_mode}, {size_label(bn_mode)}",
                          total=2 * per_runner, unit="sample") as bar:
                with bar.running(f"the dynamic-shape ONNX export (bn_mode={bn_mode})"):
                    onnx = onnx_export(bn_mode, spatial=None)
                runners = {"onnxrt": create_runner("ort-cpu", onnx=onnx, bn_mode=bn_mode),
                           "torch": create_runner("torch-cpu", model=vnet_model, bn_mode=bn_mode)}
                cache[bn_mode] = {}
                for key, runner in runners.items():
                    with runner:
                        with bar.running(f"{runner.name}: {ALONE_SAMPLES} samples one at a time"):
                            runs = ModeRuns(runner.name, runner.describe(), REDUCED_SPATIAL[bn_mode],
                                            run_in_batches(runner, inputs[:ALONE_SAMPLES], 1))
                        bar.update(ALONE_SAMPLES)
                        for n in INVARIANCE_BATCH_SIZES:
                            with bar.running(f"{runner.name}: a batch of {n}"):
                                runs.batched[n] = run_in_batches(runner, inputs[:n], n)
                            bar.update(n)
                    cache[bn_mode][key] = runs
        return cache[bn_mode]

    return get
