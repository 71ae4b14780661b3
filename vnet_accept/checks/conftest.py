"""Shared, session-cached runs for the parity and batch-invariance checks.

CPU time is the budget here (one full 64×80×80 tile costs 1.5-2 s on 2 quiet cores), so every sample is run once
per (runner, BN mode, batching) and the parity and invariance checks read the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vnet_accept.data.tiles import TILE_SHAPE, ct_like_batch
from vnet_accept.model.vnet import BN_MODES
from vnet_accept.results.inference import run_in_batches
from vnet_accept.runners.registry import create_runner
from vnet_accept.tolerances import REDUCED_SPATIAL

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


class _ByRunner(dict):
    """``{"onnxrt": ModeRuns, "torch": ModeRuns}`` computed per runner on first use (with ``--onnx`` the ONNX Runtime
    runs of the reference exports are not needed)."""

    def __init__(self, make) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: str) -> ModeRuns:
        self[key] = value = self._make(key)
        return value


@pytest.fixture(scope="session")
def reduced_runs(onnx_export, vnet_model, reduced_inputs, pytestconfig):
    """``reduced_runs(bn_mode) -> {"onnxrt": ModeRuns, "torch": ModeRuns}``, each computed once per mode, on first use
    (with ``--onnx`` the ONNX Runtime runs of the reference exports are not needed), with a progress line (samples
    done, the elapsed time while a batch computes)."""
    from vnet_accept.plugin.progress import progress

    cache: dict[str, _ByRunner] = {}
    per_runner = ALONE_SAMPLES + sum(INVARIANCE_BATCH_SIZES)

    def get(bn_mode: str) -> _ByRunner:
        assert bn_mode in BN_MODES
        if bn_mode not in cache:
            def make(key: str) -> ModeRuns:
                inputs = reduced_inputs(bn_mode)
                with progress(pytestconfig, f"parity and batch-invariance runs, {key}, bn_mode={bn_mode}, "
                              f"{size_label(bn_mode)}", total=per_runner, unit="sample") as bar:
                    if key == "onnxrt":
                        with bar.running(f"the dynamic-shape ONNX export (bn_mode={bn_mode})"):
                            onnx = onnx_export(bn_mode, spatial=None)
                        runner = create_runner("ort-cpu", onnx=onnx, bn_mode=bn_mode)
                    else:
                        runner = create_runner("torch-cpu", model=vnet_model, bn_mode=bn_mode)
                    with runner:
                        with bar.running(f"{runner.name}: {ALONE_SAMPLES} samples one at a time"):
                            runs = ModeRuns(runner.name, runner.describe(), REDUCED_SPATIAL[bn_mode],
                                            run_in_batches(runner, inputs[:ALONE_SAMPLES], 1))
                        bar.update(ALONE_SAMPLES)
                        for n in INVARIANCE_BATCH_SIZES:
                            with bar.running(f"{runner.name}: a batch of {n}"):
                                runs.batched[n] = run_in_batches(runner, inputs[:n], n)
                            bar.update(n)
                return runs

            cache[bn_mode] = _ByRunner(make)
        return cache[bn_mode]

    return get


# --- the ONNX under test (--onnx FILE, else the reference export) against the checkpoint --------------------------

#: Samples of the ONNX under test's batch: run alone and as one batch (ONNX Runtime), and as one batch in each BN
#: semantics (PyTorch): 4 at reduced size (a file with dynamic spatial axes, or the reference export's twin). A file
#: fixed at 64×80×80, as the port's, runs 2 full tiles - 10 tile passes, ~50 s on 2 cores at width 16: enough to
#: tell batch from instance statistics and to see a batch dependence (the port's export: 1.7e-2 at bs4, SPEC §3).
SUBMITTED_BATCH = 4
SUBMITTED_FULL_TILE_BATCH = 2


@dataclass
class OnnxRuns:
    """ONNX Runtime on the ONNX under test and PyTorch on the checkpoint, on the same ``inputs`` ``(K, 1, D, H, W)``:
    ``batched`` (ONNX Runtime, the K samples as one batch, ``(K, D, H, W, 2)``); on first use ``torch_batched(mode)``
    (PyTorch, the same batch in that BN semantics), ``measurement`` (which semantics the file reproduces,
    :func:`vnet_accept.judge.export.measure_bn_semantics`), ``implemented`` (the semantics its parity is judged in)
    and ``alone()`` (ONNX Runtime, each sample by itself)."""

    onnx: Any
    path: Path
    spatial: tuple[int, int, int]
    inputs: np.ndarray
    batched: np.ndarray
    ort_basis: str
    model: Any
    tolerance: Any
    declared: str
    _alone: np.ndarray | None = None
    _torch: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> str:
        return "x".join(map(str, self.spatial))

    @property
    def batch_size(self) -> int:
        return len(self.inputs)

    @property
    def torch_basis(self) -> str:
        return f"torch-cpu [fp32] on the checkpoint (width {getattr(self.model, 'width', '?')}), each BN semantics"

    @property
    def basis(self) -> str:
        return (f"{self.ort_basis} vs {self.torch_basis}, one batch of {self.batch_size} CT-like samples at "
                f"{self.size}")

    def torch_batched(self, mode: str) -> np.ndarray:
        if mode not in self._torch:
            with create_runner("torch-cpu", model=self.model, bn_mode=mode) as runner:
                self._torch[mode] = run_in_batches(runner, self.inputs, self.batch_size)
        return self._torch[mode]

    @cached_property
    def measurement(self):
        from vnet_accept.judge.export import measure_bn_semantics
        from vnet_accept.tolerances import BN_SEMANTICS_MARGIN

        return measure_bn_semantics(self.batched, {mode: self.torch_batched(mode) for mode in BN_MODES},
                                    self.tolerance, BN_SEMANTICS_MARGIN)

    @cached_property
    def implemented(self) -> str:
        from vnet_accept.judge.export import implemented_semantics

        return implemented_semantics(self.onnx.info, self.measurement, self.declared)

    def alone(self) -> np.ndarray:
        if self._alone is None:
            with create_runner("ort-cpu", onnx=self.path) as runner:
                self._alone = run_file(runner, self.inputs, 1, self.onnx)
        return self._alone


def run_file(runner, inputs: np.ndarray, batch_size: int, onnx) -> np.ndarray:
    """ONNX Runtime on the file under test; a file it cannot run fails the criterion naming the file."""
    __tracebackhide__ = True
    try:
        return run_in_batches(runner, inputs, batch_size, onnx.input_name, onnx.output_name)
    except Exception as exc:  # noqa: BLE001 - any failure here is the file's, said in one line
        pytest.fail(f"{onnx.path}: ONNX Runtime cannot run it on {tuple(inputs.shape)} float32 input "
                    f"{onnx.input_name!r} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                    "export it with the port's contract (actual_input_1 (N,1,64,80,80) -> output1)", pytrace=False)


@pytest.fixture(scope="session")
def onnx_runs(onnx_under_test, onnx_export, gate_options, vnet_model, full_tile_input) -> OnnxRuns:
    """The runs every criterion on the ONNX under test reads (see :class:`OnnxRuns`). A submitted file runs at its
    own fixed size (or 16×32×32 when its spatial axes are dynamic); without ``--onnx`` the measurement runs the
    dynamic-shape twin of the reference export (same checkpoint, exporter and BN mode) at 16×16×32, about a second."""
    from vnet_accept.tolerances import parity_tolerance

    mode = gate_options.bn_mode
    if onnx_under_test.submitted:
        path, twin = onnx_under_test.path, ""
        spatial = onnx_under_test.spatial or REDUCED_SPATIAL["instance"]
        k = onnx_under_test.batch_dim or (SUBMITTED_FULL_TILE_BATCH if spatial == TILE_SHAPE else SUBMITTED_BATCH)
    else:
        path, twin = onnx_export(mode, spatial=None), " (its dynamic-shape twin)"
        spatial, k = REDUCED_SPATIAL["batch"], SUBMITTED_BATCH
    inputs = ct_like_batch(k, spatial, seed=INPUT_SEED)
    if spatial == TILE_SHAPE:
        inputs[0] = full_tile_input[0]  # the full-tile parity then reads alone()[0]
    with create_runner("ort-cpu", onnx=path) as runner:
        batched = run_file(runner, inputs, k, onnx_under_test)
        ort_basis = f"{runner.describe()} on the {onnx_under_test.label}{twin}"
    return OnnxRuns(onnx_under_test, Path(path), spatial, inputs, batched, ort_basis, vnet_model,
                    parity_tolerance(gate_options.parity_atol, gate_options.parity_max_flip_fraction), mode)


#: Why a submitted file is not compared with PyTorch without --vnet-weights.
NO_WEIGHTS = ("the submitted ONNX is compared with the checkpoint it was exported from, and no --vnet-weights was "
              "given (seeded stand-in weights are not that checkpoint): pass --vnet-weights vnet_model_best.pth.tar")
