"""``vnet-accept gpu-check``: everything issue 6 needs verified on a GPU host, in one go, into one folder.

Steps (each timed, each result written to ``OUT`` as it finishes, so a run cut short still leaves what it did):

1. ``env.json`` — device, driver (``nvidia-smi``), torch/CUDA/cuDNN versions;
2. ``gpu-tests.log``/``.xml`` and ``gate/`` — ``pytest -m gpu``: CUDA fp32 vs ONNX Runtime, reduced precision vs
   fp32 for every variant, per-dtype batch invariance, finite outputs;
3. ``sweep-fp16.json``/``.txt`` — eager → channels-last → folded → tuned at fp16, batch sizes 1,4,8,16,32, and the
   speed-up targets (≥ 2.0× at bs1, ≥ 1.2× at bs16, never slower; they apply on an H100);
4. ``sweep-dtypes.json``/``.txt`` — eager and tuned at fp32, TF32 and bf16 (the README's table);
5. ``accuracy-pass.json`` — the streamed accuracy pass over 1,072 synthetic prepared tiles (inference plus
   post-processing, no output files) at fp32 and fp16, against the 30 s target;
6. ``cpu-backend.json`` — the CPU reference backend decided by benchmark on this host;
7. optional: ``trtexec_bs*.log`` (``--trtexec``: the port's T4 command on this card) and a ``torch.compile``
   row (``--compile``: minutes of compilation).

``gpu-check.json`` collects the verdicts; the exit status is 0 when every test passed and every applicable
target was met, 1 otherwise, 2 when the host has no usable GPU (and ``--device cpu`` was not given).
``--smoke`` shrinks everything (width-4 network, 16×32×32 inputs, few tiles) to exercise the plumbing quickly,
also on a CPU.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.io_utils import atomic_write_json, atomic_write_text
from vnet_accept.reference import DEFAULT_BATCH_SIZES, TEST_SPLIT_TILES

#: Issue 6: the full accuracy pass (1,072 tiles, inference plus post-processing, data prepared) on one H100.
ACCURACY_PASS_TARGET_S = 30.0
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CheckConfig:
    out: Path
    device: str = "cuda"
    weights: str | None = None
    bn_mode: str = "running"
    width: int = 16
    spatial: tuple[int, int, int] = TILE_SHAPE
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    accuracy_tiles: int = TEST_SPLIT_TILES
    accuracy_batch_size: int = 16
    run_tests: bool = True
    trtexec: bool = False
    compile: bool = False
    smoke: bool = False

    @classmethod
    def smoke_config(cls, out: Path, device: str) -> CheckConfig:
        return cls(out=out, device=device, width=4, spatial=(16, 32, 32), batch_sizes=(1,), accuracy_tiles=2,
                   accuracy_batch_size=2, smoke=True)


@dataclass
class CheckReport:
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, status: str, seconds: float, **details: Any) -> None:
        self.steps[name] = {"status": status, "seconds": round(seconds, 2), **details}

    @property
    def passed(self) -> bool:
        return all(s["status"] in ("pass", "info", "skipped") for s in self.steps.values())


def run_gpu_check(config: CheckConfig, log: Callable[[str], None] = print) -> int:
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    report = CheckReport()
    started = time.perf_counter()

    def write_summary() -> None:
        atomic_write_json(out / "gpu-check.json", {"config": _config_dict(config), "steps": report.steps,
                                                   "passed": report.passed,
                                                   "seconds": round(time.perf_counter() - started, 1)})

    env = environment(config.device)
    atomic_write_json(out / "env.json", env)
    log(f"[gpu-check] device: {env.get('name')} ({config.device}); torch {env.get('torch')}, CUDA "
        f"{env.get('cuda')}, cuDNN {env.get('cudnn')}")
    if config.device.startswith("cuda") and env.get("unavailable"):
        log(f"[gpu-check] {env['unavailable']}")
        report.add("env", "fail", 0.0, reason=env["unavailable"])
        write_summary()
        return 2
    report.add("env", "info", 0.0, device=env.get("name"))

    steps: list[tuple[str, Callable[[], tuple[str, dict[str, Any]]]]] = []
    if config.run_tests:
        steps.append(("tests", lambda: _step_tests(config, log)))
    model_box: dict[str, Any] = {}

    def model() -> Any:
        if "model" not in model_box:
            model_box["model"], model_box["weights"] = load_model(config.weights, config.width, config.bn_mode)
        return model_box["model"]

    steps += [
        ("sweep-fp16", lambda: _step_sweep_fp16(config, model(), model_box, log)),
        ("sweep-dtypes", lambda: _step_sweep_dtypes(config, model(), model_box, log)),
        ("accuracy-pass", lambda: _step_accuracy(config, model(), log)),
        ("cpu-backend", lambda: _step_cpu_backend(config, model(), log)),
    ]
    if config.compile:
        steps.append(("compile", lambda: _step_compile(config, model(), model_box, log)))
    if config.trtexec:
        steps.append(("trtexec", lambda: _step_trtexec(config, model(), log)))
    for name, step in steps:
        t0 = time.perf_counter()
        log(f"[gpu-check] --- {name} ---")
        try:
            status, details = step()
        except Exception as exc:  # noqa: BLE001 - one step failing must not lose the others' results
            status, details = "error", {"error": f"{type(exc).__name__}: {exc}"[:1000]}
            log(f"[gpu-check] {name}: ERROR {details['error']}")
        report.add(name, status, time.perf_counter() - t0, **details)
        log(f"[gpu-check] {name}: {status} ({time.perf_counter() - t0:.1f} s)")
        write_summary()
    write_summary()
    lines = [f"{name:<14} {s['status']:<8} {s['seconds']:>7.1f} s  {s.get('summary') or s.get('error', '')}"
             for name, s in report.steps.items()]
    atomic_write_text(out / "gpu-check.txt", "\n".join(lines) + "\n")
    log("[gpu-check] summary\n" + "\n".join(lines))
    log(f"[gpu-check] {'PASSED' if report.passed else 'FAILED'} in {time.perf_counter() - started:.0f} s; "
        f"results in {out}")
    return 0 if report.passed else 1


def _config_dict(config: CheckConfig) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in config.__dict__.items()}


# --- environment --------------------------------------------------------------------------------------------

def environment(device: str) -> dict[str, Any]:
    import torch

    from vnet_accept.gpu.sweep import device_info
    from vnet_accept.runners.torch_cuda import cuda_unavailable_reason

    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    reason = cuda_unavailable_reason() if device.startswith("cuda") else None
    if reason:
        env.update(unavailable=reason, torch=torch.__version__, cuda=torch.version.cuda, name="no GPU")
    else:
        env.update(device_info(device))
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            proc = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
                                   "--format=csv,noheader"], capture_output=True, text=True, timeout=30, check=False)
            env["nvidia_smi"] = proc.stdout.strip() or proc.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            env["nvidia_smi"] = f"failed: {exc}"
    return env


def environment_name(device: str) -> str:
    """The device's name (the GPU's, or the CPU model)."""
    from vnet_accept.gpu.sweep import device_info

    return str(device_info(device).get("name", ""))


def load_model(weights: str | None, width: int, bn_mode: str) -> tuple[Any, str]:
    """The checkpoint under test, or the seeded stand-in (the plugin's: seed 0, calibrated statistics)."""
    from vnet_accept.model.checkpoint import load_checkpoint, random_state_dict
    from vnet_accept.model.vnet import VNet

    if weights:
        ckpt = load_checkpoint(weights)
        return ckpt.build_model(bn_mode), ckpt.describe()
    model = VNet(width=width, bn_mode=bn_mode)
    model.load_state_dict(random_state_dict(seed=0, width=width))
    return model.eval(), f"seeded stand-in (seed 0, width {width})"


# --- steps --------------------------------------------------------------------------------------------------

def _step_tests(config: CheckConfig, log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    if not (REPO_ROOT / "pytest.ini").is_file():
        return "skipped", {"summary": f"not a source checkout ({REPO_ROOT} has no pytest.ini)"}
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-rs", "-p", "no:cacheprovider",
           f"--junitxml={config.out / 'gpu-tests.xml'}", f"--gate-report={config.out / 'gate'}",
           f"--bn-mode={config.bn_mode}", f"--vnet-cache-dir={config.out / 'cache'}"]
    if config.weights:
        cmd.append(f"--vnet-weights={config.weights}")
    log("[gpu-check] " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    (config.out / "gpu-tests.log").write_text(proc.stdout)
    tail = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    summary = tail[-1] if tail else "no output"
    for line in tail[-40:]:
        log("  " + line)
    skipped_all = "skipped" in summary and "passed" not in summary and "failed" not in summary
    status = "pass" if proc.returncode == 0 and not skipped_all else "fail"
    return status, {"returncode": proc.returncode, "summary": summary, "command": cmd}


def _policy(config: CheckConfig, quick: bool) -> Any:
    from vnet_accept.gpu.sweep import TimingPolicy

    if config.smoke:
        return TimingPolicy(warmup=0, min_iters=2, min_time_s=0.0, min_valid_iters=2, max_spread=10.0)
    return TimingPolicy(warmup=3, min_iters=10, min_time_s=0.5) if quick else TimingPolicy()


def _step_sweep_fp16(config: CheckConfig, model: Any, box: dict[str, Any],
                     log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    from vnet_accept.gpu.sweep import check_targets, headline, run_sweep, write_sweep

    dtype = "bf16" if not config.device.startswith("cuda") else "fp16"  # fp16 convolutions crawl on a CPU
    result = run_sweep(model, device=config.device, dtypes=(dtype,),
                       variants=("eager", "channels-last", "folded", "tuned"), batch_sizes=config.batch_sizes,
                       bn_mode=config.bn_mode, spatial=config.spatial, policy=_policy(config, quick=False),
                       weights=box.get("weights", ""), log=log)
    targets = check_targets(result, dtype=dtype)
    write_sweep(result, config.out, "sweep-fp16", targets)
    box["sweep_fp16"] = result
    failed = [t for t in targets if t.applies and not t.passed]
    numerics_failed = [f"{r.variant}/{r.dtype}/bs{r.batch_size}" for r in result.rows if r.numerics_passed is False]
    errors = [f"{r.variant}/bs{r.batch_size}: {r.error}" for r in result.rows if r.error]
    status = "fail" if failed or numerics_failed or errors else ("pass" if any(t.applies for t in targets)
                                                                 else "info")
    for t in targets:
        log(f"[gpu-check] target {'PASS' if t.passed else 'FAIL'} {t.name}: {t.detail}")
    return status, {"summary": headline(result), "targets": [t.to_dict() for t in targets],
                    "numerics_failed": numerics_failed, "errors": errors}


def _step_sweep_dtypes(config: CheckConfig, model: Any, box: dict[str, Any],
                       log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    from vnet_accept.gpu.sweep import headline, run_sweep, write_sweep

    dtypes = ("fp32", "tf32", "bf16") if config.device.startswith("cuda") else ("fp32",)
    result = run_sweep(model, device=config.device, dtypes=dtypes, variants=("eager", "tuned"),
                       batch_sizes=config.batch_sizes, bn_mode=config.bn_mode, spatial=config.spatial,
                       policy=_policy(config, quick=True), weights=box.get("weights", ""), log=log)
    write_sweep(result, config.out, "sweep-dtypes")
    numerics_failed = [f"{r.variant}/{r.dtype}/bs{r.batch_size}" for r in result.rows if r.numerics_passed is False]
    errors = [f"{r.variant}/{r.dtype}/bs{r.batch_size}: {r.error}" for r in result.rows if r.error]
    return ("fail" if numerics_failed or errors else "info"), {
        "summary": headline(result), "numerics_failed": numerics_failed, "errors": errors}


def _step_compile(config: CheckConfig, model: Any, box: dict[str, Any],
                  log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    from vnet_accept.gpu.sweep import run_sweep, speedups, write_sweep

    result = run_sweep(model, device=config.device, dtypes=("fp16",), variants=("eager", "tuned", "compile"),
                       batch_sizes=(1, 16), bn_mode=config.bn_mode, spatial=config.spatial,
                       policy=_policy(config, quick=True), weights=box.get("weights", ""), log=log)
    write_sweep(result, config.out, "sweep-compile")
    ups = speedups(result, candidate="compile")
    return "info", {"summary": ", ".join(f"compile bs{s.batch_size} {s.speedup:.2f}× eager" for s in ups),
                    "seconds_total": result.seconds}


def synthetic_prepared_dataset(root: Path, scans: int, seed: int = 0, tiles_per_scan: int = 8) -> Any:
    """A normalised synthetic dataset of ``scans`` scans under ``root`` (lungs in the first ``tiles_per_scan``
    tiles of each; the others are empty and skipped, as the port skips them) and its prepared tiles in
    ``root/prep``; returns the :class:`~vnet_accept.data.prepare.Manifest` (masks: ``MaskSource(root)``)."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.prepare import preprocess_dataset
    from vnet_accept.data.uids import read_uid_file
    from vnet_accept.results.synthetic import lung_masks, synthetic_uid, write_normalized_dataset

    uids = [synthetic_uid(seed, i) for i in range(scans)]
    masks = lung_masks(uids, {uid: range(tiles_per_scan) for uid in uids}, seed=seed)
    uid_file = write_normalized_dataset(root, masks, seed=seed)
    layout = discover(root).require_normalized()
    manifest = preprocess_dataset(layout, read_uid_file(uid_file), root / "prep")
    if manifest.failures:
        raise RuntimeError(f"synthetic preprocessing failed: {manifest.failures[0]}")
    return manifest


def timed_accuracy_pass(runner: Any, manifest: Any, masks_root: Path, batch_size: int,
                        pipelined: bool) -> dict[str, Any]:
    """One streamed accuracy pass (no output files), runner set-up included: the gate's ``run_inference`` with an
    accumulator sink, serial or overlapped (read ahead, score behind while the device computes)."""
    from vnet_accept.metrics.accuracy import AccuracyAccumulator
    from vnet_accept.metrics.masks import MaskSource
    from vnet_accept.results.inference import accumulator_sink, run_inference

    with MaskSource(masks_root) as masks:
        accumulator = AccuracyAccumulator(masks, keep_predictions=False)
        start = time.perf_counter()
        report = run_inference(runner, manifest, None, layout=None, batch_size=batch_size,
                               sink=accumulator_sink(accumulator), progress=False, overlap=pipelined)
        seconds = time.perf_counter() - start
        result = accumulator.result()
    return {"path": "run_inference (overlapped)" if pipelined else "run_inference (serial, the gate's)",
            "runner": runner.describe(), "batch_size": batch_size, "seconds": seconds, "tiles": len(result.per_tile),
            "incorrect": result.incorrect, "total": result.total, "batches": report.batches_run,
            "backend_s": report.backend_s, "wall_s": report.wall_s}


def _step_accuracy(config: CheckConfig, model: Any, log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    from vnet_accept.gpu.sweep import variant_options
    from vnet_accept.runners.torch_cuda import TorchCudaRunner

    scans = max(1, -(-config.accuracy_tiles // 8))
    runs = []
    with tempfile.TemporaryDirectory(prefix="vnet-accuracy-") as tmp:
        t0 = time.perf_counter()
        manifest = synthetic_prepared_dataset(Path(tmp), scans, tiles_per_scan=min(8, config.accuracy_tiles))
        log(f"[gpu-check] prepared {len(manifest)} synthetic tiles of {scans} scans in "
            f"{time.perf_counter() - t0:.1f} s (not timed)")
        dtypes = ("fp32", "fp16") if config.device.startswith("cuda") else ("fp32",)
        for dtype in dtypes:
            for pipelined in (False, True):
                runner = TorchCudaRunner(model, config.bn_mode, config.device,
                                         variant_options("tuned", dtype, config.device))
                run = timed_accuracy_pass(runner, manifest, Path(tmp), config.accuracy_batch_size, pipelined)
                run["dtype"] = dtype
                runs.append(run)
                log(f"[gpu-check] accuracy pass {dtype}, {run['path']}: {run['tiles']} tiles in "
                    f"{run['seconds']:.2f} s ({run['tiles'] / run['seconds']:.1f} tiles/s), "
                    f"{run['incorrect']}/{run['total']} wrong")
    consistent = len({(r["dtype"], r["incorrect"], r["total"]) for r in runs}) == len(dtypes)
    full = len(manifest) >= TEST_SPLIT_TILES
    meeting = [f"{r['dtype']} {r['path']}" for r in runs if r["seconds"] < ACCURACY_PASS_TARGET_S]
    atomic_write_json(config.out / "accuracy-pass.json", {
        "target_s": ACCURACY_PASS_TARGET_S, "tiles": len(manifest), "full_test_split_size": full,
        "consistent_between_paths": consistent, "runs": runs,
        "note": "synthetic prepared tiles (page cache warm); seconds include the runner's set-up"})
    summary = "; ".join(f"{r['dtype']} {'overlapped' if 'overlapped' in r['path'] else 'gate'} "
                        f"{r['seconds']:.1f} s" for r in runs)
    if not consistent:
        return "fail", {"summary": "the two paths scored differently: " + summary, "runs": runs}
    if not full:
        return "info", {"summary": summary + f" ({len(manifest)} tiles: no target)", "runs": runs}
    from vnet_accept.gpu.sweep import target_applies

    applies, note = target_applies(str(environment_name(config.device)))
    verdict = ("pass" if meeting else "fail") if applies else "info"
    return verdict, {"summary": summary + f"; under {ACCURACY_PASS_TARGET_S:g} s: {', '.join(meeting) or 'none'}"
                     + note, "runs": runs}


def _step_cpu_backend(config: CheckConfig, model: Any, log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    from vnet_accept.cache import ArtifactCache
    from vnet_accept.runners.backend_choice import choose_cpu_backend

    if config.smoke:
        return "skipped", {"summary": "smoke run (the CPU benchmark needs the full-width network)"}
    cpu_model = model if config.width == 16 else None  # runners copy the model: it stays on the CPU
    choice = choose_cpu_backend(model=cpu_model, bn_mode=config.bn_mode, cache=ArtifactCache(config.out / "cache"))
    log(f"[gpu-check] CPU reference backend: {choice.describe()}")
    atomic_write_json(config.out / "cpu-backend.json", choice.to_dict())
    return "info", {"summary": choice.describe()}


def _step_trtexec(config: CheckConfig, model: Any, log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    from vnet_accept.export.onnx_export import ExportOptions, export_onnx
    from vnet_accept.gpu.trtexec import find_trtexec, run_trtexec

    exe = find_trtexec()
    if exe is None:
        return "skipped", {"summary": "trtexec is not on PATH"}
    onnx_path = export_onnx(model, config.out / "vnet.onnx", ExportOptions(bn_mode=config.bn_mode))
    runs = run_trtexec(onnx_path, (1, 16), config.out, trtexec=exe)
    for run in runs:
        log("[gpu-check] " + run.describe())
    atomic_write_json(config.out / "trtexec.json", [r.to_dict() for r in runs])
    return ("pass" if all(r.ok for r in runs) else "fail"), {"summary": "; ".join(r.describe() for r in runs)}

