"""GPU throughput sweep: this GPU against the T4 thresholds and the Ascend 310 card (SPEC §7, issue 6).

For each (dtype, variant, batch size) the device-side time of one forward is measured — CUDA events around the
forward of an input already on the device, like trtexec's "GPU Compute" — after warm-up, until both a minimum
number of iterations and a minimum accumulated time are reached. Reported per row: median (the figure) and
percentiles, fps = 1000·bs / median ms, TFLOP/s from the *counted* FLOP of one forward
(:func:`vnet_accept.model.flops.count_forward_flops`), the ratio to the T4 threshold and to the port's 310 card
(per-chip fps × chips per card) at that batch size, and a validity flag (too few iterations, or a p99 more than
``MAX_P99_SPREAD`` above the median). Each row's output is compared with fp32 eager PyTorch on the same batch
(numerics are checked, not assumed).

Variants (:data:`VARIANTS`) go from plain eager PyTorch to the tuned backend one switch at a time, so the table
shows what each switch buys; :func:`speedups` and :func:`check_targets` turn them into the issue's targets.

Where ``trtexec`` is on PATH, :func:`vnet_accept.gpu.trtexec.run_trtexec` runs the port's exact T4 command for each
batch size and reads the log with the project's trtexec parser (the runs are attached to ``SweepResult.trtexec``),
so the T4-class baseline can be re-measured on the user's own card.

Timing is injected (:class:`Timer`): tests drive the statistics with scripted times; a CPU run uses the wall clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.gpu.trtexec import error_line
from vnet_accept.reference import (
    CHIPS_PER_CARD,
    DEFAULT_BATCH_SIZES,
    MAX_P99_SPREAD,
    MIN_TIMED_LOOPS,
    ONNX_INPUT_NAME,
    PORT_310_CHIP_FPS,
    T4_FPS,
    T4_FPS_BASIS,
)

SCHEMA = "vnet-accept/gpu-sweep/1"
#: Issue 6's targets for the tuned backend over plain eager PyTorch, fp16, same BN mode, measured in one run on
#: an H100: speed-up at batch 1 and batch 16, and "no slower" at every batch size.
SPEEDUP_TARGETS = {1: 2.0, 16: 1.2}
SPEEDUP_FLOOR = 1.0
TARGET_DEVICE = "H100"
#: Devices the targets are judged on: the H100 they were set for, and the H200 (the same GH100 compute die with
#: faster memory); elsewhere they are reported for information.
TARGET_DEVICES = ("H100", "H200")
#: The 310 card the port was judged on: per-chip fps × this many chips.
CARD_CHIPS = CHIPS_PER_CARD["Ascend310"]


# --- timing -------------------------------------------------------------------------------------------------

class Timer(Protocol):
    """Times one call of ``step`` in milliseconds (device time for a GPU)."""

    name: str

    def time_ms(self, step: Callable[[], object]) -> float: ...


class CudaEventTimer:
    """CUDA events recorded on the current stream around ``step``; waits for the end event."""

    name = "cuda-events"

    def __init__(self, device: str = "cuda") -> None:
        import torch

        self._torch, self.device = torch, device

    def time_ms(self, step: Callable[[], object]) -> float:
        torch = self._torch
        stream = torch.cuda.current_stream(self.device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(stream)
        step()
        end.record(stream)
        end.synchronize()
        return float(start.elapsed_time(end))


class WallTimer:
    """Wall clock (``time.perf_counter``) around ``step``, after an optional ``sync`` (CPU runs, smoke tests)."""

    name = "perf_counter"

    def __init__(self, sync: Callable[[], object] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.sync, self.clock = sync, clock

    def time_ms(self, step: Callable[[], object]) -> float:
        start = self.clock()
        step()
        if self.sync is not None:
            self.sync()
        return (self.clock() - start) * 1000.0


@dataclass(frozen=True)
class TimingPolicy:
    """Warm-up calls (not kept), then timed calls until both ``min_iters`` and ``min_time_s`` of measured time
    are reached (at most ``max_iters``). A run is valid with at least ``min_valid_iters`` calls and a p99 at most
    ``max_spread`` above the median (the perf module's limits, ``reference.MIN_TIMED_LOOPS``/``MAX_P99_SPREAD``)."""

    warmup: int = 5
    min_iters: int = 20
    min_time_s: float = 1.0
    max_iters: int = 1000
    min_valid_iters: int = MIN_TIMED_LOOPS
    max_spread: float = MAX_P99_SPREAD

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_iters < 1 or self.max_iters < self.min_iters or self.min_time_s < 0:
            raise ValueError(f"inconsistent timing policy {self}: need warmup >= 0, 1 <= min_iters <= max_iters, "
                             "min_time_s >= 0")


@dataclass(frozen=True)
class TimingStats:
    """Timed calls of one configuration, in milliseconds per call (one batch)."""

    samples_ms: tuple[float, ...]
    warmup: int
    timer: str
    min_valid_iters: int = MIN_TIMED_LOOPS
    max_spread: float = MAX_P99_SPREAD

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.samples_ms, dtype=np.float64), q)) if self.samples_ms else math.nan

    @property
    def median_ms(self) -> float:
        return self.percentile(50)

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.samples_ms)) if self.samples_ms else math.nan

    @property
    def spread(self) -> float:
        """(p99 − median) / median: how far the slow tail reaches."""
        median = self.median_ms
        return (self.percentile(99) - median) / median if median > 0 else math.inf

    @property
    def problems(self) -> tuple[str, ...]:
        found = []
        if self.n < self.min_valid_iters:
            found.append(f"only {self.n} timed calls (< {self.min_valid_iters})")
        if self.n and not self.spread <= self.max_spread:
            found.append(f"p99 is {self.spread * 100:.1f} % above the median (> {self.max_spread * 100:g} %): "
                         "unsteady (clocks, another process on the GPU?)")
        return tuple(found)

    @property
    def valid(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {"n": self.n, "warmup": self.warmup, "timer": self.timer, "median_ms": self.median_ms,
                "mean_ms": self.mean_ms, "min_ms": min(self.samples_ms, default=math.nan),
                "p10_ms": self.percentile(10), "p90_ms": self.percentile(90), "p99_ms": self.percentile(99),
                "max_ms": max(self.samples_ms, default=math.nan), "spread_p99": self.spread, "valid": self.valid,
                "problems": list(self.problems)}


def measure(step: Callable[[], object], timer: Timer, policy: TimingPolicy = TimingPolicy()) -> TimingStats:
    """Time ``step`` under ``policy``. The stop rule uses the measured times, so a scripted timer drives it."""
    for _ in range(policy.warmup):
        timer.time_ms(step)
    samples: list[float] = []
    total_ms = 0.0
    while len(samples) < policy.max_iters and (len(samples) < policy.min_iters
                                               or total_ms < policy.min_time_s * 1000.0):
        ms = timer.time_ms(step)
        samples.append(ms)
        total_ms += ms
    return TimingStats(tuple(samples), policy.warmup, timer.name, policy.min_valid_iters, policy.max_spread)


# --- variants and rows --------------------------------------------------------------------------------------

def _variant_options(name: str, dtype: str) -> Any:
    from vnet_accept.runners.torch_cuda import CudaOptions

    base = {"dtype": dtype}
    table = {
        "eager": CudaOptions.eager(dtype),
        "channels-last": CudaOptions(**base, channels_last=True, cudnn_benchmark=True, fold_bn=False,
                                     cuda_graph=False),
        "folded": CudaOptions(**base, channels_last=True, cudnn_benchmark=True, fold_bn=None, cuda_graph=False),
        "tuned": CudaOptions.tuned(dtype),
        "compile": CudaOptions(**base, channels_last=True, cudnn_benchmark=True, fold_bn=None, cuda_graph=False,
                               compile_mode="max-autotune"),
    }
    return table[name]


#: Variant name -> what it adds; "folded" folds only where the BN mode allows it (``running``).
VARIANTS = {
    "eager": "plain eager PyTorch (NCDHW, no autotuning, BN as a layer)",
    "channels-last": "+ channels-last-3d and cuDNN autotuning",
    "folded": "+ BN folded into the convolutions (running BN only)",
    "tuned": "+ CUDA graph per batch size (the CUDA backend's defaults)",
    "compile": "torch.compile(mode=max-autotune) instead of graphs (slow to compile: minutes)",
}


def variant_options(name: str, dtype: str, device: str = "cuda") -> Any:
    """The :class:`~vnet_accept.runners.torch_cuda.CudaOptions` of a variant at a dtype. On a CPU device the
    CUDA-only switches (autotuning, graphs) are off, so "tuned" is channels-last plus folding there."""
    from dataclasses import replace

    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    options = _variant_options(name, dtype)
    if not device.startswith("cuda"):
        options = replace(options, cudnn_benchmark=False, cuda_graph=False)
    return options


@dataclass(frozen=True)
class ModelInfo:
    width: int
    spatial: tuple[int, int, int]
    bn_mode: str
    flop_per_sample: int
    weights: str

    @property
    def comparable(self) -> bool:
        """Ratios to the T4 and the 310 mean something only for the real network on a real tile."""
        return self.width == 16 and tuple(self.spatial) == TILE_SHAPE


@dataclass(frozen=True)
class SweepRow:
    variant: str
    options: str
    dtype: str
    batch_size: int
    timing: TimingStats | None
    model: ModelInfo
    numerics: dict[str, Any] | None = None  # compare_outputs(...).to_dict() against fp32 eager, same batch
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.timing is not None

    @property
    def median_ms(self) -> float:
        return self.timing.median_ms if self.timing else math.nan

    @property
    def fps(self) -> float:
        return 1000.0 * self.batch_size / self.median_ms if self.ok and self.median_ms > 0 else math.nan

    @property
    def tflops(self) -> float:
        return self.fps * self.model.flop_per_sample / 1e12

    @property
    def x_t4(self) -> float | None:
        ref = T4_FPS.get(self.batch_size)
        return self.fps / ref if ref and self.model.comparable and self.ok else None

    @property
    def x_310_card(self) -> float | None:
        ref = PORT_310_CHIP_FPS.get(self.batch_size)
        return self.fps / (ref * CARD_CHIPS) if ref and self.model.comparable and self.ok else None

    @property
    def numerics_passed(self) -> bool | None:
        return None if self.numerics is None else bool(self.numerics.get("passed"))

    @property
    def valid(self) -> bool:
        return self.ok and self.timing.valid

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "options": self.options, "dtype": self.dtype, "bn_mode": self.model.bn_mode,
                "batch_size": self.batch_size, "timing": self.timing.summary() if self.timing else None,
                "samples_ms": list(self.timing.samples_ms) if self.timing else [],
                "fps": _num(self.fps), "tflops": _num(self.tflops), "x_t4": _num(self.x_t4),
                "t4_fps": T4_FPS.get(self.batch_size), "t4_basis": T4_FPS_BASIS.get(self.batch_size),
                "x_310_card": _num(self.x_310_card),
                "ascend310_card_fps": (PORT_310_CHIP_FPS[self.batch_size] * CARD_CHIPS
                                       if self.batch_size in PORT_310_CHIP_FPS else None),
                "valid": self.valid, "numerics": _numerics_summary(self.numerics),
                "numerics_passed": self.numerics_passed, "error": self.error}


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _numerics_summary(numerics: dict[str, Any] | None) -> dict[str, Any] | None:
    if numerics is None:
        return None
    keys = ("name", "max_abs", "mean_abs", "cosine", "flips", "flip_fraction", "voxels", "nonfinite_obtained",
            "passed", "failures")
    out = {k: numerics.get(k) for k in keys}
    tol = numerics.get("tolerance")
    out["tolerance"] = tol if isinstance(tol, dict) else (asdict(tol) if tol is not None else None)
    return out


@dataclass
class SweepResult:
    device: dict[str, Any]
    model: ModelInfo
    policy: TimingPolicy
    timer: str
    rows: list[SweepRow] = field(default_factory=list)
    trtexec: list[Any] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, variant: str, dtype: str, batch_size: int) -> SweepRow | None:
        return next((r for r in self.rows if (r.variant, r.dtype, r.batch_size) == (variant, dtype, batch_size)),
                    None)


# --- the sweep ----------------------------------------------------------------------------------------------

def run_sweep(model: Any, *, device: str = "cuda", dtypes: Sequence[str] = ("fp16",),
              variants: Sequence[str] = ("eager", "tuned"), batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
              bn_mode: str = "running", spatial: tuple[int, int, int] = TILE_SHAPE,
              policy: TimingPolicy = TimingPolicy(), timer: Timer | None = None, check_numerics: bool = True,
              weights: str = "seeded stand-in", seed: int = 0,
              log: Callable[[str], None] = print) -> SweepResult:
    """Time every (dtype, variant, batch size) of ``model`` (a :class:`~vnet_accept.model.vnet.VNet`).

    One runner per (dtype, variant) serves all batch sizes (a CUDA graph per size). Inputs are seeded CT-like
    tiles; row ``bs`` uses the first ``bs`` of them, and its output is compared with fp32 eager PyTorch on the
    same batch under the dtype's tolerance. A failure in one row (e.g. out of memory) is recorded in the row.
    """
    from vnet_accept.compare import compare_outputs
    from vnet_accept.data.tiles import ct_like_batch
    from vnet_accept.model.flops import count_forward_flops
    from vnet_accept.runners.torch_cuda import TorchCudaRunner
    from vnet_accept.tolerances import REDUCED_PRECISION_TOLERANCE, parity_tolerance

    start = time.perf_counter()
    is_cuda = device.startswith("cuda")
    timer = timer or (CudaEventTimer(device) if is_cuda else WallTimer())
    info = ModelInfo(model.width, tuple(spatial), bn_mode, count_forward_flops(tuple(spatial), model.width),
                     weights)
    result = SweepResult(device_info(device), info, policy, timer.name)
    inputs = ct_like_batch(max(batch_sizes), tuple(spatial), seed=seed)
    references: dict[int, np.ndarray] = {}
    if check_numerics:
        ref_options = variant_options("eager", "fp32", device)
        with TorchCudaRunner(model, bn_mode, device, ref_options, spatial=tuple(spatial)) as ref:
            for bs in batch_sizes:
                references[bs] = ref.infer({ONNX_INPUT_NAME: inputs[:bs]})["output1"]
    for dtype in dtypes:
        tol = REDUCED_PRECISION_TOLERANCE.get(dtype, parity_tolerance())
        for variant in variants:
            options = variant_options(variant, dtype, device)
            runner = TorchCudaRunner(model, bn_mode, device, options, spatial=tuple(spatial))
            described = runner.options.describe()
            log(f"[sweep] {variant} [{described}] bn_mode={bn_mode}: batch sizes {list(batch_sizes)}")
            try:
                runner.activate()
            except Exception as exc:  # noqa: BLE001 - one variant failing (e.g. compile) must not stop the sweep
                for bs in batch_sizes:
                    result.rows.append(SweepRow(variant, described, dtype, bs, None, info, error=error_line(exc)))
                continue
            try:
                for bs in batch_sizes:
                    result.rows.append(_one_row(runner, variant, described, dtype, bs, inputs[:bs], info, timer,
                                                policy, references.get(bs), tol, compare_outputs))
                    log("  " + format_row(result.rows[-1]))
            finally:
                runner.deactivate()
    result.seconds = time.perf_counter() - start
    return result


def _one_row(runner: Any, variant: str, described: str, dtype: str, bs: int, batch: np.ndarray, info: ModelInfo,
             timer: Timer, policy: TimingPolicy, reference: np.ndarray | None, tol: Any,
             compare_outputs: Callable[..., Any]) -> SweepRow:
    try:
        step = runner.device_step(batch)
        timing = measure(step, timer, policy)
        numerics = None
        if reference is not None:
            out = runner.infer({ONNX_INPUT_NAME: batch})["output1"]
            numerics = compare_outputs(out, reference, tol, name=f"{variant} {dtype} bs{bs} vs fp32 eager").to_dict()
        return SweepRow(variant, described, dtype, bs, timing, info, numerics)
    except Exception as exc:  # noqa: BLE001 - recorded in the row (out of memory at bs32, a kernel error ...)
        _free_cuda()
        return SweepRow(variant, described, dtype, bs, None, info, error=error_line(exc))


def _free_cuda() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": device, "torch": torch.__version__, "cuda": torch.version.cuda}
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        props = torch.cuda.get_device_properties(index)
        info.update(name=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 2**30, 1), multiprocessors=props.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
    else:
        from vnet_accept.runners.backend_choice import cpu_model

        info.update(name=cpu_model(), threads=torch.get_num_threads())
    return info


# --- ratios and targets -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Speedup:
    batch_size: int
    baseline_ms: float
    candidate_ms: float
    target: float  # the speed-up required at this batch size (SPEEDUP_FLOOR where no specific target)
    valid: bool  # both timings valid

    @property
    def speedup(self) -> float:
        return self.baseline_ms / self.candidate_ms if self.candidate_ms > 0 else math.nan

    @property
    def passed(self) -> bool:
        return self.speedup >= self.target

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": _num(self.speedup), "passed": self.passed}


def speedups(result: SweepResult, baseline: str = "eager", candidate: str = "tuned",
             dtype: str = "fp16") -> list[Speedup]:
    """``candidate`` against ``baseline`` at each batch size both measured (same run, dtype and BN mode)."""
    found = []
    for bs in sorted({r.batch_size for r in result.rows}):
        base, cand = result.row(baseline, dtype, bs), result.row(candidate, dtype, bs)
        if base and cand and base.ok and cand.ok:
            found.append(Speedup(bs, base.median_ms, cand.median_ms, SPEEDUP_TARGETS.get(bs, SPEEDUP_FLOOR),
                                 base.valid and cand.valid))
    return found


@dataclass(frozen=True)
class TargetCheck:
    name: str
    passed: bool
    applies: bool  # False: measured on another device than the target's, reported for information
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_applies(device_name: str) -> tuple[bool, str]:
    """Whether issue 6's targets are judged on this device, and the note to show with them."""
    found = next((d for d in TARGET_DEVICES if d in device_name), None)
    if found is None:
        return False, f" [targets are set for an {TARGET_DEVICE}; this is {device_name or 'another device'}]"
    return True, "" if found == TARGET_DEVICE else (f" [targets set for an {TARGET_DEVICE}, judged on this {found}: "
                                                    "the same GH100 compute die]")


def check_targets(result: SweepResult, dtype: str = "fp16") -> list[TargetCheck]:
    """The issue's speed-up targets, judged on this run's ratios; they apply on an H100 (and H200) only."""
    applies, note = target_applies(str(result.device.get("name", "")))
    ups = {s.batch_size: s for s in speedups(result, dtype=dtype)}
    checks = []
    for bs, target in sorted(SPEEDUP_TARGETS.items()):
        s = ups.get(bs)
        name = f"tuned_vs_eager.{dtype}.bs{bs}"
        if s is None:
            checks.append(TargetCheck(name, False, applies, f"bs{bs} not measured for both eager and tuned{note}"))
            continue
        detail = (f"{s.speedup:.2f}× (eager {s.baseline_ms:.3f} ms, tuned {s.candidate_ms:.3f} ms per batch; "
                  f"target ≥ {target:g}×)" + ("" if s.valid else " — timing not valid"))
        checks.append(TargetCheck(name, s.passed, applies, detail + note))
    slower = [s for s in ups.values() if s.speedup < SPEEDUP_FLOOR]
    detail = ("no batch size slower" if not slower else "slower at " + ", ".join(
        f"bs{s.batch_size} ({s.speedup:.2f}×)" for s in slower)) + f" across {sorted(ups)}"
    checks.append(TargetCheck(f"tuned_no_slower.{dtype}", bool(ups) and not slower, applies, detail + note))
    return checks


def headline(result: SweepResult) -> str:
    """"this GPU = X × T4" from the fastest valid row with passing numerics at bs1 and bs16."""
    if not result.model.comparable:
        size = "×".join(map(str, result.model.spatial))
        return (f"this device: no T4 ratio (width {result.model.width}, {size} is not the real network on a "
                "64×80×80 tile)")
    parts = []
    for bs in (1, 16):
        rows = [r for r in result.rows if r.batch_size == bs and r.valid and r.numerics_passed is not False]
        if not rows:
            continue
        best = max(rows, key=lambda r: r.fps)
        parts.append(f"{best.x_t4:.1f}× T4 at bs{bs} ({best.fps:.1f} fps, {best.variant} {best.dtype}; "
                     f"{best.x_310_card:.1f}× the port's 310 card)")
    name = result.device.get("name", "this GPU")
    return f"this GPU ({name}) = " + "; ".join(parts) if parts else f"{name}: no valid row at bs1 or bs16"


# --- output -------------------------------------------------------------------------------------------------

_HEADER = (f"{'variant':<14} {'dtype':<5} {'bs':>3} {'ms/batch':>9} {'p10-p90 ms':>17} {'fps':>9} {'TFLOP/s':>8} "
           f"{'×T4':>7} {'×310card':>8} {'n':>5}  valid  numerics vs fp32")


def format_row(row: SweepRow) -> str:
    if not row.ok:
        return f"{row.variant:<14} {row.dtype:<5} {row.batch_size:>3}  ERROR {row.error}"
    t = row.timing
    spread = f"{t.percentile(10):.3f}-{t.percentile(90):.3f}"
    x_t4 = f"{row.x_t4:.2f}" if row.x_t4 is not None else "-"
    x_310 = f"{row.x_310_card:.2f}" if row.x_310_card is not None else "-"
    if row.numerics is None:
        num = "not checked"
    else:
        num = (f"{'ok' if row.numerics_passed else 'FAIL'} flips {row.numerics['flip_fraction']:.2g} "
               f"cos {row.numerics['cosine']:.6f}")
    return (f"{row.variant:<14} {row.dtype:<5} {row.batch_size:>3} {t.median_ms:>9.3f} {spread:>17} {row.fps:>9.2f} "
            f"{row.tflops:>8.2f} {x_t4:>7} {x_310:>8} {t.n:>5}  {'yes' if t.valid else 'NO':<5}  {num}")


def format_table(result: SweepResult) -> str:
    m = result.model
    lines = [f"GPU sweep on {result.device.get('name', result.device.get('device'))} "
             f"(torch {result.device.get('torch')}, CUDA {result.device.get('cuda')}, "
             f"cuDNN {result.device.get('cudnn', '-')}); timer {result.timer}",
             f"model: width {m.width}, input {'×'.join(map(str, m.spatial))}, bn_mode={m.bn_mode}, "
             f"{m.flop_per_sample / 1e9:.2f} GFLOP per sample (counted), weights: {m.weights}",
             f"policy: {result.policy.warmup} warm-up, >= {result.policy.min_iters} calls and >= "
             f"{result.policy.min_time_s:g} s per row; valid = n >= {result.policy.min_valid_iters} and p99 <= "
             f"median × {1 + result.policy.max_spread:g}",
             _HEADER, "-" * len(_HEADER)]
    lines += [format_row(r) for r in result.rows]
    ups = {dtype: speedups(result, dtype=dtype) for dtype in sorted({r.dtype for r in result.rows})}
    for dtype, found in ups.items():
        if found:
            lines.append(f"tuned vs eager ({dtype}): " + ", ".join(f"bs{s.batch_size} {s.speedup:.2f}×"
                                                                   for s in found))
    for run in result.trtexec:
        lines.append(run.describe())
    lines.append(headline(result))
    return "\n".join(lines)


def sweep_to_json(result: SweepResult, targets: Sequence[TargetCheck] = ()) -> dict[str, Any]:
    m = result.model
    return {
        "schema": SCHEMA,
        "device": result.device,
        "model": {"width": m.width, "spatial": list(m.spatial), "bn_mode": m.bn_mode,
                  "flop_per_sample": m.flop_per_sample, "gflop_per_sample": m.flop_per_sample / 1e9,
                  "weights": m.weights, "comparable_to_t4": m.comparable},
        "timing": {"timer": result.timer, **asdict(result.policy)},
        "references": {"t4_fps": T4_FPS, "t4_basis": T4_FPS_BASIS, "ascend310_chip_fps": PORT_310_CHIP_FPS,
                       "ascend310_chips_per_card": CARD_CHIPS},
        "rows": [r.to_dict() for r in result.rows],
        "speedups": {dtype: [s.to_dict() for s in speedups(result, dtype=dtype)]
                     for dtype in sorted({r.dtype for r in result.rows})},
        "targets": [t.to_dict() for t in targets],
        "trtexec": [run.to_dict() for run in result.trtexec],
        "headline": headline(result),
        "seconds": result.seconds,
    }


def write_sweep(result: SweepResult, out_dir: str | Path, stem: str = "gpu-sweep",
                targets: Sequence[TargetCheck] = ()) -> tuple[Path, Path]:
    """``<stem>.json`` (for the gate report) and ``<stem>.txt`` (the printed table) in ``out_dir``."""
    from vnet_accept.io_utils import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    json_path = atomic_write_json(out / f"{stem}.json", sweep_to_json(result, targets))
    text = format_table(result) + "".join(f"\n{'PASS' if t.passed else 'FAIL'} {t.name}: {t.detail}"
                                          for t in targets) + "\n"
    return json_path, atomic_write_text(out / f"{stem}.txt", text)
