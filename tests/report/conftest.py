"""Hand-made criteria and reports in the shape of ``gate-report.json`` (the contract in report/record.py), so
the renderers are tested on every family - pass, fail and skip - without running a criterion."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vnet_accept.judge.criterion import Criterion
from vnet_accept.reference import AccuracyReference
from vnet_accept.report.record import SCHEMA, SCHEMA_VERSION, summarise


def criterion(cid: str, verdict: str = "pass", measured: Any = None, **fields: Any) -> dict[str, Any]:
    c = Criterion(id=cid, description=fields.pop("description", f"what {cid} asserts"), verdict=verdict,
                  measured=measured).to_dict()
    c.update(fields)
    return c


def report_of(criteria: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    report = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
              "summary": summarise([Criterion.from_dict(c) for c in criteria]),
              "settings": {"vnet_weights": None, "luna16_root": None, "test_uids": None, "bn_mode": "running",
                           "parity_atol": 1e-4, "invariance_atol": 1e-5, "reference_error": 0.355,
                           "tolerance_pp": 1.0, "batch_sizes": [1, 4, 8, 16, 32]},
              "provenance": {"versions": {"torch": "2.13.0"}, "python": "3.11", "command_line": ["vnet-accept", "gate"],
                             "machine": {"system": "Linux", "machine": "x86_64", "cpu_count": 2},
                             "time_utc": "2026-01-01T00:00:00Z", "toolchain": {"CANN (ATC)": "8.0.RC1"}},
              "criteria": criteria}
    report.update(extra)
    return report


def accuracy(source: str, verdict: str, error: float | None, volumes: int = 5, npz: str | None = None,
             **fields: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if error is not None:
        per_volume = [{"uid": f"1.3.6.1.4.1.{i}", "incorrect": 100 * i, "total": 409_600 * 8,
                       "error_rate_pct": error * (0.5 + i / volumes), "dice": 0.98, "iou": 0.96}
                      for i in range(volumes)]
        details = {"subject": "port", "incorrect": 2_479_051, "total": 439_091_200, "tiles": 1072, "volumes": 134,
                   "uids_listed": 134, "uids_used": 134, "views": AccuracyReference().views(error),
                   "ci95_pct": [error - 0.05, error + 0.05], "per_volume": per_volume}
        if npz:
            details["worst_volume"] = {"uid": per_volume[-1]["uid"], "error_rate_pct": per_volume[-1]["error_rate_pct"],
                                       "npz": npz}
    return criterion(f"accuracy.error_rate.{source}", verdict, error, units="%",
                     threshold="|error − 0.355| ≤ 1.0 pp", basis=f"{source}, fp16", details=details, **fields)


def throughput(bs: int, chip_fps: float, t4_fps: float, verdict: str | None = None, chips: int = 4) -> dict[str, Any]:
    card = chip_fps * chips
    return criterion(f"perf.throughput.bs{bs}", verdict or ("pass" if card > t4_fps else "fail"), card, units="fps",
                     threshold=f"> T4 {t4_fps} fps", details={
                         "batch_size": bs, "chip_fps": chip_fps, "card_fps": card, "chips_per_card": chips,
                         "t4_fps": t4_fps, "t4_basis": "median" if bs == 1 else "mean", "ratio": card / t4_fps,
                         "statistic": "mean", "source": f"perf_vision_batchsize_{bs}_device_0.txt"})


def comparison(max_abs: float, limit: float, flips: int = 0, voxels: int = 409_600) -> dict[str, Any]:
    return {"comparison": {"max_abs": max_abs, "flips": flips, "voxels": voxels,
                           "tolerance": {"max_abs": limit, "max_flip_fraction": 1e-5}}}


def functional_criteria() -> list[dict[str, Any]]:
    return [
        criterion("parity.onnxrt_vs_torch.running.bs1_64x80x80", "pass", 1.9e-6, units="max |Δ log-prob|",
                  threshold="max|Δ| <= 0.0001, label flips <= 1e-05 of voxels",
                  basis="onnxrt-cpu [bn_mode=running, fp32, cpu] vs torch-cpu [bn_mode=running, fp32, cpu]",
                  details=comparison(1.9e-6, 1e-4)),
        criterion("batch_invariance.onnxrt.running.bs16", "pass", 0.0, units="max |Δ log-prob|",
                  threshold="max|Δ| <= 1e-05, no label flip", details=comparison(0.0, 1e-5)),
        criterion("batch_invariance.torch.instance.bs4", "pass", 9.5e-7, details=comparison(9.5e-7, 1e-5)),
        criterion("batch_dependence_detected.torch.bs4", "pass", 0.085,
                  threshold="> 1e-05 or any label flip (dependence detected)", details=comparison(0.085, 1e-5, 177)),
        criterion("export.contract", "pass", {"inputs": [["actual_input_1", "float32", ["batch", 1, 64, 80, 80]]],
                                              "opset": 11}),
        criterion("checkpoint.loads_strictly", "pass", 45_603_934, units="parameters", threshold="strict load"),
    ]


@pytest.fixture
def full_report(tmp_path) -> dict[str, Any]:
    """Every family present: OM accuracy pass at bs1, fail at bs16, ONNX skipped; throughput at five batch
    sizes (bs4 below the T4); parity and invariance passing; one NPU skip."""
    rng = np.random.default_rng(0)
    shape = (16, 20, 20)
    mask = np.zeros(shape, np.uint8)
    mask[4:12, 5:15, 3:9] = 1
    pred = mask.copy()
    pred[6:10, 8:12, 8:12] = 1
    pred[5, 5:8, 3:5] = 0
    npz = tmp_path / "worst.npz"
    np.savez_compressed(npz, ct=rng.integers(-1000, 400, shape).astype(np.int16), mask=mask, prediction=pred)
    criteria = [
        accuracy("om_bs1", "pass", 0.5646, npz=str(npz), reason="Test set: Error: 2479051/439091200 (0.5646%)"),
        accuracy("om_bs16", "fail", 1.6, reason="|Δ| 1.245 pp > 1.0 pp"),
        accuracy("onnxrt", "skip", 49.9, reason="seeded stand-in weights: error rate not meaningful; pass "
                                                "--vnet-weights vnet_model_best.pth.tar"),
        throughput(1, 6.10496, 10.31899), throughput(4, 2.5, 10.95101), throughput(8, 6.41992, 10.01912),
        throughput(16, 6.49396, 10.15731), throughput(32, 6.35151, 9.44),
        criterion("npu.om_builds.bs64", "skip", reason="atc not found on PATH; source CANN's set_env.sh or pass "
                                                       "--npu-results DIR"),
        *functional_criteria(),
    ]
    return report_of(criteria, complete=True,
                     gate={"exit_code": 1, "explanation": "1 criterion failed", "judged_on": ["a checkpoint"]})


@pytest.fixture
def build():
    """The builders above, for test modules (importlib mode: conftest helpers are reached through fixtures)."""
    from types import SimpleNamespace

    return SimpleNamespace(criterion=criterion, report_of=report_of, accuracy=accuracy, throughput=throughput,
                           comparison=comparison, functional=functional_criteria)
