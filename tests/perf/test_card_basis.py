"""Chips per card checked against the SoC before any card figure meets the T4 (SPEC §7)."""

from __future__ import annotations

import pytest

from vnet_accept.judge.perf import throughput
from vnet_accept.perf.card_basis import check_card_basis
from vnet_accept.perf.measurement import PerfMeasurement
from vnet_accept.perf.rules import reference_t4_thresholds
from vnet_accept.reference import PORT_310_CHIP_FPS


def _chip(bs: int, fps: float, scope: str = "chip") -> PerfMeasurement:
    return PerfMeasurement("benchmark", "legacy perf_vision file", f"perf_vision_batchsize_{bs}_device_0.txt", bs,
                           "file name", fps, "mean", scope, "Interface throughputRate")


PORT = [_chip(bs, fps) for bs, fps in PORT_310_CHIP_FPS.items()]


@pytest.mark.parametrize(("soc", "chips"), [("Ascend310", None), ("Ascend310", 4), ("Ascend310P3", 1),
                                            ("Ascend310P3", None)])
def test_a_multiplier_the_soc_confirms_passes(soc, chips):
    basis = check_card_basis(soc, chips)
    assert basis.passed is True and basis.chips_per_card == basis.soc_chips_per_card
    assert basis.explanation.startswith("PASS card basis")


def test_per_chip_reported_as_per_card_on_a_310_fails_naming_the_cause():
    basis = check_card_basis("Ascend310", 1)
    assert basis.passed is False
    assert basis.explanation.startswith("FAIL card basis: chips per card 1 (--chips-per-card) contradicts SoC "
                                        "Ascend310 (--soc-version), whose card has 4 chip(s) per card")
    assert "4× under-stated" in basis.explanation


def test_multiplying_by_four_on_a_one_chip_card_fails():
    basis = check_card_basis("Ascend310P3", 4, soc_source="npu-smi info")
    assert basis.passed is False and "contradicts SoC Ascend310P3 (npu-smi info)" in basis.explanation
    assert "4× over-stated" in basis.explanation


def test_a_per_card_figure_is_never_multiplied():
    basis = check_card_basis("Ascend310", None, measurements=[_chip(1, 24.4, scope="card")])
    assert basis.passed is False and "already a per-card figure" in basis.explanation


@pytest.mark.parametrize(("soc", "chips", "needle"), [(None, None, "neither the SoC nor chips per card"),
                                                      (None, 4, "cannot be checked without the SoC"),
                                                      ("Ascend910", None, "unknown")])
def test_nothing_to_confirm_with_is_no_verdict(soc, chips, needle):
    basis = check_card_basis(soc, chips)
    assert basis.passed is None and basis.explanation.startswith("NO VERDICT") and needle in basis.explanation


def test_the_port_passes_on_a_310_and_the_wrong_multipliers_fail_first():
    """The one throughput judgement (vnet_accept.judge.perf) checks the card basis before any number."""
    t4 = reference_t4_thresholds()
    ok = throughput(PORT, t4, soc_version="Ascend310")
    assert [ok.throughput_criterion(bs).verdict for bs in ok.batch_sizes] == ["pass"] * 5
    assert [round(v.card_fps, 2) for v in ok.verdicts.values()] == [24.42, 26.7, 25.68, 25.98, 25.41]
    under = throughput(PORT, t4, soc_version="Ascend310", chips_per_card=1)
    c = under.throughput_criterion(1)
    assert c.verdict == "fail" and c.explanation().startswith("FAIL card basis: chips per card 1")
    assert "under-stated" in c.explanation() and under.tier_criterion().verdict == "fail"
    over = throughput(PORT, t4, soc_version="Ascend310P3", chips_per_card=4)  # would be 24 fps > T4: must fail
    assert over.throughput_criterion(16).explanation().startswith("FAIL card basis: chips per card 4")
    assert all(c.verdict == "fail" for c in over.criteria() if c.id.startswith("perf.throughput"))


def test_a_slow_card_fails_on_the_numbers():
    result = throughput([_chip(1, 2.0), _chip(16, 2.0)], reference_t4_thresholds(), soc_version="Ascend310")
    c = result.throughput_criterion(1)
    assert c.verdict == "fail" and c.explanation().startswith("FAIL bs1: card 8.00 fps")


def test_without_the_soc_or_chips_nothing_is_judged():
    c = throughput(PORT, reference_t4_thresholds(), soc_version=None).throughput_criterion(1)
    assert c.verdict == "skip" and "neither the SoC nor chips per card" in c.reason


def test_a_required_batch_size_without_a_figure_fails_as_required_not_measured():
    """bs1/bs16 decide the tier: missing from the NPU's figures it is a failure saying so; bs8 is only a skip."""
    figures = [m for m in PORT if m.batch_size != 16]
    result = throughput(figures, reference_t4_thresholds(), soc_version="Ascend310", batch_sizes=[1, 8, 16],
                        required=[1, 16])
    c = result.throughput_criterion(16)
    assert c.verdict == "fail" and c.reason.startswith("required, not measured: no NPU figure for bs16")
    figures = [m for m in PORT if m.batch_size != 8]
    c = throughput(figures, reference_t4_thresholds(), soc_version="Ascend310", batch_sizes=[1, 8, 16],
                   required=[1, 16]).throughput_criterion(8)
    assert c.verdict == "skip"
