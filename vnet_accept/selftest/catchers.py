"""Each gate criterion as a judgement on one artifact, through the same library function the criterion uses.

A :class:`Judgement` holds the criterion id, the verdict and a message whose first line holds the verdict and the
cause (pytest's short summary shows only that line). The functions here do no judging of their own: they call
the criterion's library function and turn its result (or the error it raises) into a judgement.

============================== ====================================================================
criterion                      library function
============================== ====================================================================
checkpoint.loads_strictly      :func:`vnet_accept.model.checkpoint.load_checkpoint`
data.inputs_match_manifest     :func:`vnet_accept.data.consistency.check_inputs`
data.uid_coverage              :func:`vnet_accept.data.consistency.check_uid_coverage`
export.batch_invariant         :func:`vnet_accept.export.invariance.batch_invariance_verdict`
parity.onnxrt_vs_torch         :func:`vnet_accept.compare.compare_outputs`
accuracy.results_valid         :func:`vnet_accept.results.postprocess.postprocess_results`
accuracy.error_rate            the same report's pooled error rate against :data:`MAX_ERROR_PCT`
accuracy.tiles_in_place        the same report's misplaced tiles (outputs under another tile's name)
results.match_reference        :func:`vnet_accept.results.per_tile.compare_per_tile`
perf.throughput                :func:`vnet_accept.perf.card_basis.judge_card_throughput`
============================== ====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.tolerances import (
    INVARIANCE_ATOL,
    PARITY_ATOL,
    PARITY_MAX_FLIP_FRACTION,
    SELFTEST_MAX_ERROR_PCT,
)

#: The self-test's limits are the gate's defaults, whatever the session passes: it proves the gate as shipped.
MAX_ERROR_PCT = SELFTEST_MAX_ERROR_PCT


@dataclass(frozen=True)
class Judgement:
    criterion: str
    passed: bool
    message: str
    measured: Any = None
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def first_line(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "passed": self.passed, "first_line": self.first_line,
                "measured": self.measured}


def judge_checkpoint(path: Path) -> Judgement:
    from vnet_accept.errors import CheckpointError
    from vnet_accept.model.checkpoint import load_checkpoint

    try:
        ckpt = load_checkpoint(path)
        ckpt.build_model()
    except CheckpointError as exc:
        return Judgement("checkpoint.loads_strictly", False, f"FAIL {exc}")
    return Judgement("checkpoint.loads_strictly", True, f"PASS {ckpt.describe()} loads strictly",
                     len(ckpt.state_dict))


def judge_inputs(manifest: Any, dataset_root: Path) -> Judgement:
    from vnet_accept.data.consistency import check_inputs

    result = check_inputs(manifest, dataset_root)
    return Judgement("data.inputs_match_manifest", result.passed, result.message(), result.tiles_checked -
                     len(result.findings), result.to_dict())


def judge_uid_coverage(uid_file: Path, manifest: Any) -> Judgement:
    from vnet_accept.data.consistency import check_uid_coverage
    from vnet_accept.data.uids import read_uid_file

    result = check_uid_coverage(read_uid_file(uid_file), manifest.uids, f"the tiles in {manifest.directory}",
                                uid_file=uid_file)
    return Judgement("data.uid_coverage", result.passed, result.headline(), f"{result.used}/{result.listed}",
                     result.to_dict())


def run_alone_and_batched(onnx: Path, samples: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """ONNX Runtime outputs of ``samples`` (N, 1, D, H, W) one at a time and as one batch."""
    from vnet_accept.runners.base import run_in_batches
    from vnet_accept.runners.onnxrt import OnnxRuntimeRunner

    with OnnxRuntimeRunner(onnx) as runner:
        return run_in_batches(runner, samples, 1), {len(samples): run_in_batches(runner, samples, len(samples))}


def judge_batch_invariance(onnx: Path, samples: np.ndarray, atol: float = INVARIANCE_ATOL) -> Judgement:
    from vnet_accept.export.inspect import inspect_onnx
    from vnet_accept.export.invariance import batch_invariance_verdict

    alone, batched = run_alone_and_batched(onnx, samples)
    verdict = batch_invariance_verdict(inspect_onnx(onnx), alone, batched, atol)
    return Judgement("export.batch_invariant", verdict.passed, verdict.headline(), verdict.worst_max_abs)


def judge_parity(onnx: Path, model: Any, tile_input: np.ndarray, bn_mode: str, atol: float = PARITY_ATOL,
                 max_flip_fraction: float = PARITY_MAX_FLIP_FRACTION) -> Judgement:
    """ONNX Runtime on ``onnx`` against PyTorch on ``model`` (the checkpoint), one tile ``(1, 1, 64, 80, 80)``."""
    from vnet_accept.compare import compare_outputs
    from vnet_accept.runners.onnxrt import OnnxRuntimeRunner
    from vnet_accept.runners.torch_runner import TorchRunner
    from vnet_accept.tolerances import Tolerance

    feed = {"actual_input_1": np.ascontiguousarray(tile_input, dtype=np.float32)}
    with OnnxRuntimeRunner(onnx, bn_mode=bn_mode) as ort_runner, TorchRunner(model, bn_mode=bn_mode) as torch_runner:
        obtained = ort_runner.infer(feed)["output1"]
        expected = torch_runner.infer(feed)["output1"]
    result = compare_outputs(obtained, expected, Tolerance(max_abs=atol, max_flip_fraction=max_flip_fraction),
                             name=f"onnxrt {onnx.name} vs torch checkpoint [bn_mode={bn_mode}, bs1, 64×80×80]")
    return Judgement("parity.onnxrt_vs_torch", result.passed, result.report(),
                     result.max_abs, {"comparison": result.to_dict()})


def judge_results(results: Path, manifest: Any, dataset_root: Path, uid_file: Path, layout: str | None = None,
                  max_error_pct: float = MAX_ERROR_PCT) -> tuple[Judgement, Judgement, Judgement]:
    """Post-process ``results`` against the held-out masks: ``accuracy.results_valid`` (the folder can be judged:
    layout, output index, sizes, NaN/Inf, missing tiles), ``accuracy.error_rate`` (pooled error rate <=
    ``max_error_pct``) and ``accuracy.tiles_in_place`` (no output fits another tile's mask far better than its
    own); the last two are not judged when the folder cannot be."""
    from vnet_accept.data.uids import read_uid_file
    from vnet_accept.errors import DataError
    from vnet_accept.reference import AccuracyReference
    from vnet_accept.results.postprocess import postprocess_results

    try:
        report = postprocess_results(results, luna16_root=dataset_root, manifest=manifest,
                                     uids=read_uid_file(uid_file), layout=layout,
                                     reference=AccuracyReference(), resamples=50, keep_predictions=True)
    except DataError as exc:
        text = str(exc)
        valid = Judgement("accuracy.results_valid", False, f"FAIL {text}", None,
                          {"kinds": sorted(getattr(exc, "kinds", lambda: set())())})
        return (valid, Judgement("accuracy.error_rate", False, "NOT JUDGED: the results cannot be post-processed"),
                Judgement("accuracy.tiles_in_place", False, "NOT JUDGED: the results cannot be post-processed"))
    r = report.result
    valid = Judgement("accuracy.results_valid", True, f"PASS {report.folder.describe()}; {r.port_line()}", r.tiles)
    ok = r.error_rate_pct <= max_error_pct
    per_volume = ", ".join(f"{v.uid[-6:]}: {v.error_rate_pct:.3f} %" for v in r.per_volume)
    error = Judgement("accuracy.error_rate", ok,
                      f"{'PASS' if ok else 'FAIL'} error rate {r.error_rate_pct:.4f} % "
                      f"{'<=' if ok else '>'} {max_error_pct} % (self-test threshold); {r.port_line()}; "
                      f"per volume {per_volume}; Dice {r.dice:.4f}", r.error_rate_pct,
                      {"incorrect": r.incorrect, "total": r.total, "dice": r.dice,
                       "per_volume_pct": {v.uid: v.error_rate_pct for v in r.per_volume}})
    return valid, error, judge_placement(report.misplaced)


def judge_placement(misplaced: Any) -> Judgement:
    """``accuracy.tiles_in_place`` from a report's misplaced tiles (:meth:`AccuracyAccumulator.misplaced_tiles`)."""
    from vnet_accept.results.criteria import placement_message

    return Judgement("accuracy.tiles_in_place", not misplaced, placement_message(misplaced), len(misplaced))


def judge_per_tile(results: Path, manifest: Any, reference: dict, reference_name: str,
                   atol: float = PARITY_ATOL, max_flip_fraction: float = PARITY_MAX_FLIP_FRACTION) -> Judgement:
    from vnet_accept.errors import DataError
    from vnet_accept.results.per_tile import compare_per_tile
    from vnet_accept.tolerances import Tolerance

    try:
        agreement = compare_per_tile(results, manifest, reference, reference_name,
                                     Tolerance(max_abs=atol, max_flip_fraction=max_flip_fraction))
    except DataError as exc:
        return Judgement("results.match_reference", False, f"FAIL {exc}")
    return Judgement("results.match_reference", agreement.passed, agreement.message(),
                     agreement.tiles - len(agreement.mismatches), agreement.to_dict())


def judge_throughput(perf_dir: Path, soc_version: str | None, chips_per_card: int | None) -> Judgement:
    from vnet_accept.perf.card_basis import judge_card_throughput
    from vnet_accept.perf.parsers import parse_perf_paths
    from vnet_accept.perf.rules import reference_t4_thresholds

    scan = parse_perf_paths([perf_dir], statistic="port")
    if scan.rejected or not scan.measurements:
        return Judgement("perf.throughput", False, f"FAIL unreadable performance files: {scan.rejected}")
    result = judge_card_throughput(scan.measurements, reference_t4_thresholds(), soc_version, chips_per_card)
    card = {v.batch_size: round(v.card_fps, 2) for v in result.verdicts if v.card_fps is not None}
    return Judgement("perf.throughput", result.passed, result.message(), card, {"basis": result.basis.to_dict()})
