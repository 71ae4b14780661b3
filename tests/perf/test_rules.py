"""SPEC §7's rules: card fps vs T4 per batch size, placement tier, PerfStatus, the 310P rule, run validity."""

from __future__ import annotations

import pytest

from vnet_accept.errors import UsageError
from vnet_accept.perf.measurement import LatencyStats, PerfMeasurement
from vnet_accept.perf.parsers import parse_perf_paths
from vnet_accept.perf.rules import (
    NpuFigure,
    T4Threshold,
    assess_run,
    card_fps,
    chips_per_card_for,
    combine_chip_figures,
    judge_310p,
    judge_batch_size,
    placement,
    reference_310_card_fps,
    reference_t4_basis_report,
    reference_t4_thresholds,
    t4_basis_report,
    t4_thresholds_from,
    tier_for_ratio,
)
from vnet_accept.reference import (
    CHIPS_PER_CARD,
    MAX_P99_SPREAD,
    MIN_TIMED_LOOPS,
    PORT_310_CHIP_FPS,
    RULE_310P_VS_310,
    RULE_310P_VS_T4,
    T4_FPS,
    TIER_BOUNDS,
)


def _figure(bs: int, chip_fps: float) -> NpuFigure:
    return NpuFigure(bs, chip_fps, "mean", ("test",), (chip_fps,))


def _port_verdicts():
    figures = {bs: _figure(bs, fps) for bs, fps in PORT_310_CHIP_FPS.items()}
    return judge_throughput(figures, reference_t4_thresholds(), CHIPS_PER_CARD["Ascend310"])


def judge_throughput(npu, t4, chips_per_card):
    """One verdict per batch size present in either table (what vnet_accept.judge.perf.throughput does)."""
    return [judge_batch_size(bs, npu.get(bs), t4.get(bs), chips_per_card) for bs in sorted(set(npu) | set(t4))]


@pytest.mark.parametrize("soc, chips", [("Ascend310", 4), ("Ascend310P3", 1), ("ascend310p1", 1)])
def test_chips_per_card(soc, chips):
    assert chips_per_card_for(soc) == chips


@pytest.mark.parametrize("soc", ["Ascend910B4", "Ascend310B1", "Ascend31"])
def test_unknown_soc_asks_for_chips_per_card(soc):
    with pytest.raises(UsageError, match="--chips-per-card"):
        chips_per_card_for(soc)


def test_the_port_reproduces_its_published_figures():
    verdicts = {v.batch_size: v for v in _port_verdicts()}
    # SPEC §7: bs1 6.10496 -> 24.42 fps card, 2.37x the T4; bs16 2.56x.
    assert round(verdicts[1].card_fps, 2) == 24.42 and round(verdicts[16].card_fps, 2) == 25.98
    assert (round(verdicts[1].ratio, 2), round(verdicts[16].ratio, 2)) == (2.37, 2.56)
    assert all(v.passed for v in verdicts.values())
    result = placement(verdicts.values())
    assert (result.tier, result.perf_status, result.deciding_batch_size) == ("Benchmark", "PERFECT", 1)
    assert result.explanation.startswith('BENCHMARK ("Perfect")')
    assert result.criterion_details()["ratios"] == {1: verdicts[1].ratio, 16: verdicts[16].ratio}


def test_criterion_details_follow_the_report_contract():
    """report.record documents what perf.throughput.bs<N> criteria carry; the report's modelzoo reads them."""
    from vnet_accept.report.modelzoo import throughput_verdicts

    v = judge_batch_size(16, _figure(16, 6.49396), reference_t4_thresholds()[16], 4)
    details = v.criterion_details()
    assert {"batch_size", "chip_fps", "card_fps", "chips_per_card", "t4_fps", "t4_basis", "ratio", "statistic",
            "source"} <= set(details)
    criterion = {"id": "perf.throughput.bs16", "verdict": "pass", "measured": v.card_fps, "details": details}
    (back,) = throughput_verdicts([criterion])
    assert (back.card_fps, back.t4_fps, back.ratio, back.passed) == (v.card_fps, v.t4_fps, v.ratio, True)


def test_verdict_carries_value_threshold_and_basis():
    v = judge_batch_size(1, _figure(1, 2.0), reference_t4_thresholds()[1], 4)
    assert (v.passed, v.card_fps, v.t4_fps, v.t4_basis, v.npu_basis) == (False, 8.0, T4_FPS[1], "median", "mean")
    first_line = v.explanation.splitlines()[0]
    assert first_line.startswith("FAIL bs1: card 8.00 fps (4 × 2 fps per chip, mean) <= T4 10.31899 fps")
    assert v.to_dict()["verdict"] == "FAIL"


def test_equal_to_the_t4_is_not_a_pass():
    t4 = T4Threshold(4, 8.0, "mean", "test")
    assert judge_batch_size(4, _figure(4, 2.0), t4, 4).passed is False


def test_missing_sides_give_no_verdict():
    verdicts = judge_throughput({64: _figure(64, 7.0)}, {1: T4Threshold(1, 10.0, "median", "t")}, 4)
    assert [(v.batch_size, v.passed) for v in verdicts] == [(1, None), (64, None)]
    assert verdicts[0].explanation == "NO VERDICT bs1: no NPU measurement; T4 10 fps (median)"
    assert verdicts[1].explanation == "NO VERDICT bs64: no T4 threshold; card 28.00 fps"


@pytest.mark.parametrize("ratio, tier", [(TIER_BOUNDS[0] - 1e-9, "Research"), (TIER_BOUNDS[0], "Official"),
                                         (TIER_BOUNDS[1], "Official"), (TIER_BOUNDS[1] + 1e-9, "Benchmark")])
def test_tier_bounds(ratio, tier):
    assert tier_for_ratio(ratio) == tier


def _verdicts_with_ratios(ratios: dict[int, float]):
    t4 = {bs: T4Threshold(bs, 10.0, "mean", "t") for bs in ratios}
    return judge_throughput({bs: _figure(bs, 10.0 * r) for bs, r in ratios.items()}, t4, 1)


@pytest.mark.parametrize("ratios, tier, status", [
    ({1: 1.5, 16: 1.3, 4: 1.4}, "Benchmark", "PERFECT"),
    ({1: 1.5, 16: 1.1}, "Official", "OK"),
    ({1: 1.5, 16: 1.3, 4: 0.9}, "Benchmark", "POK"),  # an authoritative pass, another batch size fails
    ({1: 0.8, 16: 1.3}, "Research", "NOK"),
])
def test_placement_and_perf_status(ratios, tier, status):
    result = placement(_verdicts_with_ratios(ratios))
    assert (result.tier, result.perf_status) == (tier, status)
    assert result.explanation.endswith(f"PerfStatus:{status}")


def test_placement_needs_both_authoritative_batch_sizes():
    result = placement(_verdicts_with_ratios({1: 2.0, 4: 2.0}))
    assert result.tier is None and "bs16" in result.explanation


def test_310p_rule():
    t4 = reference_t4_thresholds()
    card_310 = reference_310_card_fps()
    need = max(RULE_310P_VS_310 * card_310[1], RULE_310P_VS_T4 * T4_FPS[1])
    passing, failing = judge_310p({1: need + 0.01}, card_310, t4), judge_310p({1: need - 0.01}, card_310, t4)
    assert passing[0].passed and not failing[0].passed
    assert failing[0].explanation.startswith(f"FAIL 310P rule bs1: card {need - 0.01:.2f} fps")
    assert (failing[0].needed_vs_310, failing[0].needed_vs_t4) == (RULE_310P_VS_310 * card_310[1],
                                                                   RULE_310P_VS_T4 * T4_FPS[1])


def test_card_fps():
    assert card_fps(6.10496, 4) == pytest.approx(24.41984)
    with pytest.raises(ValueError):
        card_fps(1.0, 0)


def _chip(bs: int, fps: float, device: int, basis: str = "mean") -> PerfMeasurement:
    return PerfMeasurement("ais_bench", "f", f"d{device}.json", bs, "file name", fps, basis, "chip", "m",
                           device_id=device)


def test_several_chips_are_averaged_and_the_spread_shown():
    (figure,) = combine_chip_figures([_chip(1, 6.0, 0), _chip(1, 6.2, 1), _chip(1, 6.4, 2)]).values()
    assert figure.chip_fps == pytest.approx(6.2)
    assert figure.describe_spread() == "mean of 3 chip figures, 6–6.4"
    mixed = combine_chip_figures([_chip(1, 6.0, 0), _chip(1, 6.2, 1, "median")])[1]
    assert mixed.basis == "mixed (mean/median)"


def test_two_t4_figures_for_one_batch_size_are_refused(transcripts, perf_fixtures):
    scan = parse_perf_paths([transcripts / "trtexec_t4_bs16.log", perf_fixtures / "trtexec8_t4_vnet_bs16.log"])
    with pytest.raises(UsageError, match="two T4 figures for bs16"):
        t4_thresholds_from(scan.measurements)


def test_a_t4_threshold_records_the_gpu_and_tensorrt_version_it_was_measured_with(perf_fixtures):
    """The throughput criterion's details (and the report's provenance) say what the T4 figure was measured on: the
    log's "Selected Device" and TensorRT version, or the published table's T4 and TensorRT 7.2.3.4."""
    t4 = t4_thresholds_from(parse_perf_paths([perf_fixtures / "trtexec8_t4_vnet_bs16.log"]).measurements)[16]
    assert (t4.gpu, t4.tensorrt_version) == ("Tesla T4", "8.6.1")
    details = judge_batch_size(16, _figure(16, 6.49396), t4, 4).criterion_details()
    assert (details["t4_gpu"], details["t4_tensorrt_version"]) == ("Tesla T4", "8.6.1")
    published = judge_batch_size(1, None, reference_t4_thresholds()[1], 4).criterion_details()
    assert (published["t4_gpu"], published["t4_tensorrt_version"]) == ("NVIDIA T4", "7.2.3.4")


def test_the_port_t4_table_inconsistency_is_stated(transcripts):
    scan = parse_perf_paths(sorted(transcripts.glob("trtexec_t4_bs*.log")))
    report = t4_basis_report(scan.measurements)
    assert report.startswith("INCONSISTENT T4 basis")
    assert "bs1 10.31899 fps from the median (mean: 10.30208)" in report
    assert "bs16 10.15731 fps from the mean (median: 10.15912)" in report
    assert t4_basis_report(parse_perf_paths(sorted(transcripts.glob("trtexec_t4_bs*.log")),
                                            statistic="mean").measurements) is None
    assert "median at bs1" in reference_t4_basis_report()


def _timed(**stats) -> PerfMeasurement:
    return PerfMeasurement("ais_bench", "f", "s.json", 1, "file name", 10.0, "mean", "chip", "m",
                           latency=LatencyStats(**stats))


def test_run_validity():
    steady = assess_run(_timed(median_ms=100.0, p99_ms=100.0 + 100.0 * MAX_P99_SPREAD, count=MIN_TIMED_LOOPS))
    assert steady.ok and "valid" in steady.describe()
    short = assess_run(_timed(median_ms=100.0, p99_ms=101.0, count=MIN_TIMED_LOOPS - 1))
    assert not short.ok and f"only {MIN_TIMED_LOOPS - 1} timed calls" in short.describe()
    unsteady = assess_run(_timed(median_ms=100.0, p99_ms=100.0 + 100.0 * MAX_P99_SPREAD + 0.01, count=50))
    assert not unsteady.ok and "unsteady" in unsteady.describe()
    cold = assess_run(_timed(median_ms=100.0, p99_ms=101.0, max_ms=250.0, first_ms=250.0, count=50))
    assert cold.warmup_suspect and "first timed call" in cold.describe()
