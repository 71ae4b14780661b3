"""Which backend runs the reference pass on this machine: the GPU when there is one, else the faster CPU backend.

:func:`select_backend` resolves ``--backend auto``: ``torch-cuda`` when CUDA is usable (and the PyTorch model is
at hand); without a GPU, ONNX Runtime (``ort-cpu``) and PyTorch (``torch-cpu``) are timed on this machine and
the faster is chosen — decided from a benchmark, not assumed. The benchmark runs the full-width VNet on a quarter
tile, 16×80×80 (the tile's in-plane size, a quarter of its depth), one forward per backend after a tiny warm-up,
alternating, and a second round only when the first took under :data:`BENCH_BUDGET_S`: a few seconds in all.
A fixed-size ONNX (the ATC artifact) is timed at its own size instead.

Measured here (2-core AMD EPYC VM, torch 2.13, onnxruntime 1.32, load ≈ 3 from other jobs), best of 3, seconds:
16×80×80 ORT 1.09 / PyTorch 1.79; full 64×80×80 tile ORT 4.08 / PyTorch 4.21 — the slab ranks the backends as the
tile does, with a wider margin. Both figures move with the machine's load (PyTorch's OpenMP threads suffer most
from a competing process), so the load average at measuring time is recorded and shown with the decision.

The decision, with both times, is cached per machine (CPU model, core and thread counts, library versions, BN
mode — not the weights, which do not change the speed) in the artifact cache; every caller prints
:meth:`BackendChoice.describe`, so the choice and the measurement are always visible.

Backend names are the registry's (:mod:`vnet_accept.runners.registry`): ``torch-cuda`` (fp32;
``torch-cuda-tf32``/``-fp16``/``-bf16`` for the other precisions), ``torch-cpu``, ``ort-cpu``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.errors import UsageError

CPU_BACKENDS = ("torch-cpu", "ort-cpu")
#: The CPU benchmark's input (D, H, W) and model width (the real VNet's: conv shapes decide the speed).
BENCH_SPATIAL = (16, 80, 80)
BENCH_WIDTH = 16
#: A second round of timed forwards is run only if the first took less than this (seconds, all backends).
BENCH_BUDGET_S = 2.5
CACHE_NAMESPACE = "backend-choice"
CHOICE_FILE = "choice.json"


@dataclass(frozen=True)
class BackendChoice:
    """The backend in force and why, with the measurements behind it."""

    backend: str
    reason: str
    times_s: dict[str, float] = field(default_factory=dict)  # best seconds per forward, per CPU backend
    samples_s: dict[str, list[float]] = field(default_factory=dict)
    spatial: tuple[int, int, int] | None = None
    width: int | None = None
    bn_mode: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    measured_at: str | None = None
    load_average: float | None = None  # 1-minute load average when measured
    cached: bool = False

    def describe(self) -> str:
        text = f"{self.backend}: {self.reason}"
        if self.times_s:
            size = "×".join(map(str, self.spatial or ()))
            times = " vs ".join(f"{name} {t:.3g} s" for name, t in sorted(self.times_s.items(), key=lambda kv: kv[1]))
            text += (f" [{times} per 1×1×{size} forward, width {self.width}, bn_mode={self.bn_mode}, "
                     f"{self.machine.get('torch_threads')} torch threads on {self.machine.get('cpu')}"
                     + (f"; measured {self.measured_at}, cached" if self.cached else "") + "]")
            cpus = self.machine.get("logical_cpus") or 1
            if self.load_average is not None and self.load_average > 0.5 * cpus:
                text += (f" (measured under load {self.load_average:.1f} on {cpus} CPUs: rerun `vnet-accept backend "
                         "--cpu --refresh` on a quiet machine)")
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackendChoice:
        data = dict(data)
        if data.get("spatial") is not None:
            data["spatial"] = tuple(data["spatial"])
        return cls(**data)


def machine_key() -> dict[str, Any]:
    """What makes two machines time differently: CPU model, cores, threads, library versions."""
    import onnxruntime
    import torch

    return {"cpu": cpu_model(), "machine": platform.machine(), "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def onnx_spatial(onnx: str | os.PathLike[str] | bytes) -> tuple[int, int, int] | None:
    """The fixed (D, H, W) of an ONNX's input, or ``None`` when the spatial axes are dynamic."""
    import onnx as onnx_lib

    proto = onnx_lib.load_from_string(onnx) if isinstance(onnx, bytes) else onnx_lib.load(
        str(onnx), load_external_data=False)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    values = [d.dim_value if d.HasField("dim_value") else None for d in dims[2:]]
    return tuple(values) if len(values) == 3 and all(values) else None  # type: ignore[return-value]


def benchmark_cpu_backends(model: Any, onnx: str | os.PathLike[str] | bytes, bn_mode: str = "running",
                           spatial: tuple[int, int, int] = BENCH_SPATIAL, budget_s: float = BENCH_BUDGET_S,
                           rounds: int = 2, clock: Callable[[], float] = time.perf_counter,
                           runners: dict[str, Any] | None = None) -> dict[str, list[float]]:
    """Seconds per ``(1, 1, *spatial)`` forward, per CPU backend, backends alternating round by round (so load
    on the machine hits both alike). A tiny warm-up forward first pays each backend's lazy initialisation
    (skipped for a fixed-size ONNX). ``runners`` (name -> runner) replaces the real ones in tests."""
    from vnet_accept.runners.onnxrt import OnnxRuntimeRunner
    from vnet_accept.runners.torch_runner import TorchRunner

    if runners is None:
        runners = {"ort-cpu": OnnxRuntimeRunner(onnx, name="ort-cpu", bn_mode=bn_mode),
                   "torch-cpu": TorchRunner(model, bn_mode, name="torch-cpu")}
    rng = np.random.default_rng(0)
    feed = {"actual_input_1": rng.standard_normal((1, 1, *spatial)).astype(np.float32)}
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for runner in runners.values():
        runner.activate()
    try:
        if spatial == BENCH_SPATIAL:
            tiny = {"actual_input_1": rng.standard_normal((1, 1, 16, 16, 16)).astype(np.float32)}
            for runner in runners.values():
                runner.infer(tiny)
        spent = 0.0
        for _ in range(rounds):
            for name, runner in runners.items():
                start = clock()
                runner.infer(feed)
                samples[name].append(clock() - start)
                spent += samples[name][-1]
            if spent >= budget_s:
                break
    finally:
        for runner in runners.values():
            runner.deactivate()
    return samples


def decide(samples: dict[str, list[float]]) -> tuple[str, dict[str, float]]:
    """The backend with the smallest best time (a tie goes to ``torch-cpu``, the reference implementation)."""
    best = {name: min(values) for name, values in samples.items() if values}
    if not best:
        raise ValueError("no timings to decide from")
    order = {name: i for i, name in enumerate(CPU_BACKENDS)}
    return min(best, key=lambda name: (best[name], order.get(name, 99))), best


def choose_cpu_backend(model: Any = None, onnx: Any = None, bn_mode: str = "running", cache: Any = None,
                       refresh: bool = False,
                       benchmark: Callable[..., dict[str, list[float]]] | None = None) -> BackendChoice:
    """Benchmark (or read the cached decision) and return the faster CPU backend.

    Args:
        model: the VNet to time in PyTorch (default: a freshly initialised full-width VNet; the speed depends on
            the architecture, not the weights).
        onnx: an export of the same network: a path, bytes, or a callable returning one (called only when the
            decision is not cached); dynamic spatial axes give the cheap 16×80×80 benchmark, a fixed-size
            export is timed at its size. Default: exported here (10-20 s on 2 cores, once per machine).
        cache: an :class:`~vnet_accept.cache.ArtifactCache` keeping the decision; ``None`` measures every time.
        refresh: measure again even if a decision is cached (and cache the new one).
        benchmark: replaces :func:`benchmark_cpu_backends` (tests).
    """
    key = {"machine": machine_key(), "bn_mode": bn_mode, "width": BENCH_WIDTH, "version": 1}

    def measure() -> BackendChoice:
        import torch

        from vnet_accept.model.vnet import VNet

        net = model
        if net is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                net = VNet(width=BENCH_WIDTH, bn_mode=bn_mode).eval()
        source = onnx() if callable(onnx) else onnx
        if source is None:
            from vnet_accept.export.onnx_export import ExportOptions, export_onnx_bytes

            source = export_onnx_bytes(net, ExportOptions(bn_mode=bn_mode, spatial=None))
        spatial = onnx_spatial(source) or BENCH_SPATIAL
        samples = (benchmark or benchmark_cpu_backends)(net, source, bn_mode=bn_mode, spatial=spatial)
        backend, best = decide(samples)
        other = next((n for n in best if n != backend), None)
        reason = ("faster on this machine's CPU" if other else "the only CPU backend timed")
        return BackendChoice(backend, reason, best, samples, tuple(spatial), getattr(net, "width", None), bn_mode,
                             key["machine"], time.strftime("%Y-%m-%dT%H:%M:%S"), _load_average())

    if cache is None:
        return measure()
    built: list[BackendChoice] = []

    def build(directory: Path) -> None:
        built.append(measure())
        (directory / CHOICE_FILE).write_text(json.dumps(built[-1].to_dict(), indent=2) + "\n")

    if refresh:
        import shutil

        from filelock import FileLock

        entry = cache.entry_dir(CACHE_NAMESPACE, _key_digest(key))
        entry.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(entry) + ".lock"):
            shutil.rmtree(entry, ignore_errors=True)
    entry = cache.get_or_build(CACHE_NAMESPACE, key, build)
    if built:
        return built[-1]
    try:
        return replace(BackendChoice.from_dict(json.loads((entry / CHOICE_FILE).read_text())), cached=True)
    except (OSError, ValueError, TypeError):
        # A corrupt entry reads as a miss: measure now and say so (the cache never decides on bad data).
        return replace(measure(), reason="faster on this machine's CPU (measured now: the cached decision was "
                                         "unreadable)")


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):  # not on every platform
        return None


def _key_digest(key: dict[str, Any]) -> str:
    from vnet_accept.cache import cache_key

    return cache_key(key)


def select_backend(requested: str = "auto", *, bn_mode: str = "running", cache: Any = None, model: Any = None,
                   onnx: Any = None, refresh: bool = False, cuda_available: Callable[[], bool] | None = None,
                   benchmark: Callable[..., dict[str, list[float]]] | None = None) -> BackendChoice:
    """The backend for the reference pass.

    ``requested`` other than ``auto`` is checked against the registry (and ``torch-cuda*`` against the machine)
    and used. ``auto`` picks ``torch-cuda`` when a GPU is usable and the PyTorch model can be built (``model``
    given, or neither ``model`` nor ``onnx`` given); with only an ONNX, ``ort-cpu``; otherwise
    :func:`choose_cpu_backend` decides between the CPU backends (``benchmark`` replaces its timing: the gate
    times the first scan's tiles, which it runs through both backends anyway).
    """
    if cuda_available is None:
        def cuda_available() -> bool:
            import torch

            return torch.cuda.is_available()
    if requested != "auto":
        from vnet_accept.runners.registry import get_backend

        spec = get_backend(requested)
        if spec.name.startswith("torch-cuda") and not cuda_available():
            from vnet_accept.runners.torch_cuda import CUDA_UNAVAILABLE

            raise UsageError(f"--backend {spec.name}: {CUDA_UNAVAILABLE}; or choose torch-cpu / ort-cpu")
        return BackendChoice(spec.name, "requested explicitly")
    have_model, have_onnx = model is not None, onnx is not None
    if cuda_available() and (have_model or not have_onnx):
        return BackendChoice("torch-cuda", "a CUDA GPU is usable (override with --backend)")
    if have_onnx and not have_model:
        return BackendChoice("ort-cpu", "only an ONNX file is at hand (pass the weights to let PyTorch compete)")
    return choose_cpu_backend(model=model, onnx=onnx, bn_mode=bn_mode, cache=cache, refresh=refresh,
                              benchmark=benchmark)


def default_cache() -> Any:
    """The artifact cache the command line uses: ``$VNET_ACCEPT_CACHE``, else the per-user folder
    (:func:`vnet_accept.cache.default_cache_root`, created with mode 0700). A folder owned by another user, or one
    that cannot be created, is a :class:`UsageError` naming it (never a fallback to a shared /tmp path)."""
    from vnet_accept.cache import ArtifactCache, CacheDirError, default_cache_root

    env = os.environ.get("VNET_ACCEPT_CACHE")
    cache = ArtifactCache(Path(env).expanduser() if env else default_cache_root())
    where = "VNET_ACCEPT_CACHE" if env else "the per-user cache folder"
    try:
        cache.prepare()
    except CacheDirError as exc:
        raise UsageError(f"{where}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot use {exc.filename or cache.root} ({exc.strerror or exc}); set "
                         "VNET_ACCEPT_CACHE to a folder you own and can write to") from None
    return cache
