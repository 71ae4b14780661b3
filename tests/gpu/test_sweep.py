"""The GPU sweep's logic without a GPU (vnet_accept.gpu.sweep): timing statistics and validity driven by a
scripted timer, fps/TFLOP/s/ratios, speed-up targets, table and JSON, and trtexec through a stand-in script."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.gpu.sweep import (
    ModelInfo,
    SweepResult,
    SweepRow,
    TimingPolicy,
    TimingStats,
    WallTimer,
    check_targets,
    format_table,
    headline,
    measure,
    run_sweep,
    speedups,
    sweep_to_json,
    variant_options,
    write_sweep,
)
from vnet_accept.model.flops import count_forward_flops
from vnet_accept.model.vnet import VNet
from vnet_accept.reference import CHIPS_PER_CARD, PORT_310_CHIP_FPS, T4_FPS

pytestmark = pytest.mark.usefixtures("one_thread")

H100 = {"name": "NVIDIA H100 80GB HBM3", "device": "cuda:0", "torch": "2.13.0", "cuda": "12.8", "cudnn": 91900}


class ScriptedTimer:
    """Returns the given times in order (then repeats the last); counts the steps it was asked to time, and runs
    them only if ``run`` (a CPU forward per timed call would make a test slow for nothing)."""

    name = "scripted"

    def __init__(self, times_ms, run=True):
        self.times, self.calls, self.run = list(times_ms), 0, run

    def time_ms(self, step):
        if self.run:
            step()
        value = self.times[min(self.calls, len(self.times) - 1)]
        self.calls += 1
        return value


def _stats(samples, **kwargs) -> TimingStats:
    return TimingStats(tuple(samples), warmup=0, timer="scripted", **kwargs)


def _real_model(**kwargs) -> ModelInfo:
    return ModelInfo(16, TILE_SHAPE, "running", count_forward_flops(TILE_SHAPE, 16), "test", **kwargs)


def _row(variant, bs, median_ms, dtype="fp16", n=30, model=None, numerics_passed=True) -> SweepRow:
    numerics = {"passed": numerics_passed, "flip_fraction": 0.0, "cosine": 1.0}
    return SweepRow(variant, variant, dtype, bs, _stats([median_ms] * n), model or _real_model(), numerics)


# -- timing ------------------------------------------------------------------------------------------------------------

def test_warmup_is_discarded_and_min_iters_stops_a_slow_step():
    timer = ScriptedTimer([500.0, 400.0] + [100.0] * 50)  # two cold calls, then steady
    steps = []
    stats = measure(lambda: steps.append(1), timer, TimingPolicy(warmup=2, min_iters=5, min_time_s=0.3))
    assert stats.samples_ms == (100.0,) * 5 and stats.warmup == 2  # 5 × 100 ms >= 0.3 s
    assert len(steps) == 7 and stats.timer == "scripted"


def test_min_time_keeps_a_fast_step_running_and_max_iters_caps_it():
    fast = measure(lambda: None, ScriptedTimer([2.0]), TimingPolicy(warmup=0, min_iters=5, min_time_s=0.1))
    assert fast.n == 50  # 50 × 2 ms = 0.1 s
    capped = measure(lambda: None, ScriptedTimer([0.001]),
                     TimingPolicy(warmup=0, min_iters=5, min_time_s=10.0, max_iters=200))
    assert capped.n == 200


def test_inconsistent_policies_are_refused():
    with pytest.raises(ValueError, match="inconsistent timing policy"):
        TimingPolicy(min_iters=10, max_iters=5)


def test_statistics_and_validity():
    steady = _stats([10.0] * 18 + [10.5, 10.8])
    assert steady.median_ms == 10.0 and steady.valid and steady.problems == ()
    assert steady.percentile(99) == pytest.approx(np.percentile(steady.samples_ms, 99))
    assert steady.spread == pytest.approx((steady.percentile(99) - 10.0) / 10.0)
    assert steady.summary()["valid"] is True
    unsteady = _stats([10.0] * 15 + [14.0] * 5)
    assert not unsteady.valid
    assert unsteady.problems[0].startswith("p99 is 40.0 % above the median (> 10 %)")
    short = _stats([10.0] * 4)
    assert short.problems == ("only 4 timed calls (< 10)",)


# -- rows and ratios ---------------------------------------------------------------------------------------------------

def test_fps_tflops_and_ratios_use_the_counted_flop_and_the_reference_tables():
    row = _row("tuned", 16, 29.1)
    assert row.fps == pytest.approx(16000 / 29.1)
    assert row.tflops == pytest.approx(row.fps * count_forward_flops(TILE_SHAPE, 16) / 1e12)
    assert row.x_t4 == pytest.approx(row.fps / T4_FPS[16])
    assert row.x_310_card == pytest.approx(row.fps / (PORT_310_CHIP_FPS[16] * CHIPS_PER_CARD["Ascend310"]))
    d = row.to_dict()
    assert d["t4_fps"] == T4_FPS[16] and d["t4_basis"] == "mean" and d["valid"] is True


def test_no_ratio_to_the_t4_for_a_reduced_network_or_size():
    narrow = ModelInfo(4, (16, 32, 32), "running", count_forward_flops((16, 32, 32), 4), "test")
    row = _row("tuned", 1, 2.0, model=narrow)
    assert row.x_t4 is None and row.x_310_card is None and math.isfinite(row.fps)
    result = SweepResult({"name": "cpu"}, narrow, TimingPolicy(), "scripted", [row])
    assert headline(result).startswith("this device: no T4 ratio (width 4, 16×32×32")


def _h100_result(bs1=(5.86, 2.66), bs16=(35.6, 29.1), device=H100) -> SweepResult:
    """SPEC/issue 6's H100 measurements (ms per batch, fp16, running BN): eager vs channels-last + folded + graph."""
    rows = [_row("eager", 1, bs1[0]), _row("tuned", 1, bs1[1]), _row("eager", 16, bs16[0]),
            _row("tuned", 16, bs16[1])]
    return SweepResult(device, _real_model(), TimingPolicy(), "cuda-events", rows)


def test_the_issues_h100_measurements_meet_the_targets():
    result = _h100_result()
    ups = {s.batch_size: s for s in speedups(result)}
    assert ups[1].speedup == pytest.approx(5.86 / 2.66) and ups[16].speedup == pytest.approx(35.6 / 29.1)
    checks = {c.name: c for c in check_targets(result)}
    assert all(c.passed and c.applies for c in checks.values()), checks
    assert checks["tuned_vs_eager.fp16.bs1"].detail.startswith("2.20× (eager 5.860 ms, tuned 2.660 ms per batch")


def test_missed_and_slower_targets_fail_and_other_devices_are_informational():
    checks = {c.name: c for c in check_targets(_h100_result(bs1=(5.86, 3.9), bs16=(35.6, 36.0)))}
    assert not checks["tuned_vs_eager.fp16.bs1"].passed  # 1.50× < 2.0×
    assert not checks["tuned_vs_eager.fp16.bs16"].passed
    assert not checks["tuned_no_slower.fp16"].passed
    assert "slower at bs16 (0.99×)" in checks["tuned_no_slower.fp16"].detail
    other = check_targets(_h100_result(device={**H100, "name": "NVIDIA A10"}))
    assert not any(c.applies for c in other)
    assert "[targets are set for an H100; this is NVIDIA A10]" in other[0].detail
    h200 = check_targets(_h100_result(device={**H100, "name": "NVIDIA H200"}))
    assert all(c.applies and c.passed for c in h200)
    assert h200[0].detail.endswith("[targets set for an H100, judged on this H200: the same GH100 compute die]")


def test_headline_states_this_gpu_in_t4_and_310_card_units():
    line = headline(_h100_result())
    bs1 = 1000 / 2.66
    assert line.startswith(f"this GPU (NVIDIA H100 80GB HBM3) = {bs1 / T4_FPS[1]:.1f}× T4 at bs1 ({bs1:.1f} fps, "
                           "tuned fp16; ")
    assert f"{16000 / 29.1 / T4_FPS[16]:.1f}× T4 at bs16" in line


def test_headline_ignores_rows_whose_numerics_failed():
    result = _h100_result()
    result.rows.append(_row("compile", 1, 1.0, numerics_passed=False))  # fastest, but wrong
    assert "tuned fp16" in headline(result).split(";")[0]


def test_table_and_json(tmp_path):
    result = _h100_result()
    targets = check_targets(result)
    table = format_table(result)
    assert "eager          fp16    1     5.860" in table and "tuned vs eager (fp16): bs1 2.20×, bs16 1.22×" in table
    doc = json.loads(json.dumps(sweep_to_json(result, targets)))
    assert doc["schema"] == "vnet-accept/gpu-sweep/1"
    assert doc["model"]["gflop_per_sample"] == pytest.approx(count_forward_flops(TILE_SHAPE, 16) / 1e9)
    assert [r["batch_size"] for r in doc["rows"]] == [1, 1, 16, 16]
    assert doc["speedups"]["fp16"][0]["speedup"] == pytest.approx(5.86 / 2.66)
    assert doc["references"]["t4_fps"]["16"] == T4_FPS[16]
    json_path, txt_path = write_sweep(result, tmp_path, "sweep", targets)
    assert json.loads(json_path.read_text())["targets"][0]["passed"] is True
    assert txt_path.read_text().rstrip().endswith("PASS tuned_no_slower.fp16: no batch size slower across [1, 16]")


def test_an_errored_row_is_kept_and_shown():
    row = SweepRow("tuned", "fp16", "fp16", 32, None, _real_model(), error="OutOfMemoryError: CUDA out of memory")
    assert not row.ok and math.isnan(row.fps) and row.to_dict()["fps"] is None
    result = SweepResult(H100, _real_model(), TimingPolicy(), "cuda-events", [row])
    assert "ERROR OutOfMemoryError" in format_table(result)


# -- the sweep itself, on the CPU ------------------------------------------------------------------------------------

def test_variants_build_up_one_switch_at_a_time():
    described = [variant_options(v, "fp16").resolve("running", "cuda").describe()
                 for v in ("eager", "channels-last", "folded", "tuned")]
    assert described == ["fp16", "fp16, channels-last-3d, cudnn-benchmark",
                         "fp16, channels-last-3d, cudnn-benchmark, bn-folded",
                         "fp16, channels-last-3d, cudnn-benchmark, bn-folded, cuda-graph"]
    assert variant_options("tuned", "fp32", "cpu").resolve("instance", "cpu").describe() == "fp32, channels-last-3d"
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        variant_options("fast", "fp16")


def test_a_cpu_sweep_times_checks_numerics_and_records_rows():
    torch.manual_seed(0)
    model = VNet(width=4).eval()
    timer = ScriptedTimer([3.0], run=False)
    lines = []
    result = run_sweep(model, device="cpu", dtypes=("bf16",), variants=("eager", "tuned"), batch_sizes=(1, 2),
                       spatial=(16, 32, 32), policy=TimingPolicy(warmup=1, min_iters=10, min_time_s=0.0),
                       timer=timer, log=lines.append)
    assert [(r.dtype, r.variant, r.batch_size) for r in result.rows] == [
        ("bf16", "eager", 1), ("bf16", "eager", 2), ("bf16", "tuned", 1), ("bf16", "tuned", 2)]
    assert all(r.ok and r.valid and r.numerics_passed for r in result.rows), format_table(result)
    assert timer.calls == 4 * 11  # one warm-up and ten timed calls per row
    assert all(0 < r.numerics["max_abs"] < 0.1 for r in result.rows)  # compared with fp32 eager: bf16 differs
    assert all(r.fps == pytest.approx(1000 * r.batch_size / 3.0) for r in result.rows)
    assert result.rows[2].options == "bf16, channels-last-3d, bn-folded"
    assert result.device["device"] == "cpu" and result.timer == "scripted"
    assert any(line.startswith("[sweep] tuned [bf16, channels-last-3d, bn-folded]") for line in lines)


def test_wall_timer_measures_milliseconds():
    ticks = iter([1.0, 1.25])
    assert WallTimer(clock=lambda: next(ticks)).time_ms(lambda: None) == pytest.approx(250.0)


def test_numpy_percentiles_match_the_reported_spread():
    samples = np.linspace(10, 11, 101)
    stats = _stats(samples)
    assert stats.spread == pytest.approx((np.percentile(samples, 99) - 10.5) / 10.5)
