"""The OM judging functions on arrays and parsed figures: parity tile by tile, batch invariance, which BN
semantics is closest (clear, ambiguous, merged at bs1), and card fps against the T4 with the tier and the 310P
rule (numbers worked out by hand from the fixture files)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.judge.om import MERGED_AT_BS1, bn_semantics, om_batch_invariance, om_parity
from vnet_accept.judge.perf import throughput
from vnet_accept.perf.parsers import parse_perf_file
from vnet_accept.perf.rules import reference_t4_thresholds
from vnet_accept.tolerances import om_tolerance

PERF = Path(__file__).resolve().parents[2] / "fixtures" / "perf"
SHAPE = (4, 8, 8, 2)


def logprobs(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    shape = SHAPE if n is None else (n, *SHAPE)
    logits = rng.normal(0, 3, shape[:-1])
    out = np.empty(shape, dtype=np.float32)
    out[..., 1] = -np.logaddexp(0, -logits)
    out[..., 0] = -np.logaddexp(0, logits)
    return out


def test_parity_passes_fp16_rounding_and_fails_a_shifted_tile():
    rng = np.random.default_rng(0)
    ref = {"0": logprobs(rng), "1": logprobs(rng)}
    om = {k: v.astype(np.float16).astype(np.float32) for k, v in ref.items()}
    verdict = om_parity(om, ref, {"0": "scan a, tile 0", "1": "scan a, tile 1"}, batch_size=1)
    assert verdict.passed and verdict.overall.red < 1e-3 and verdict.tolerance == om_tolerance()
    om["1"] = om["1"] + 1.5  # a wrong normalisation shifts every log-probability
    verdict = om_parity(om, ref, {"0": "scan a, tile 0", "1": "scan a, tile 1"}, batch_size=1)
    assert not verdict.passed and verdict.worst.stem == "1"
    line = verdict.explanation()
    assert line.startswith("FAIL OM bs1 vs ONNX: 1 of 2 tiles outside") and "scan a, tile 1" in line
    assert "max|Δ| 1.5 > 1" in line
    details = verdict.criterion_details()
    assert [t["passed"] for t in details["tiles"]] == [True, False]


def test_parity_names_two_tiles_whose_outputs_were_swapped():
    rng = np.random.default_rng(2)
    ref = {str(k): logprobs(rng) for k in range(3)}
    om = {"0": ref["0"], "1": ref["2"], "2": ref["1"]}  # the outputs of tiles 1 and 2 under each other's names
    labels = {k: f"scan a, tile {k}" for k in ref}
    verdict = om_parity(om, ref, labels, batch_size=1)
    assert not verdict.passed
    assert set(verdict.swapped) == {("scan a, tile 1", "scan a, tile 2"), ("scan a, tile 2", "scan a, tile 1")}
    assert "outputs swapped between tiles (scan a, tile 1 holds the output of scan a, tile 2" in verdict.explanation()
    om["1"] = om["1"] + 1.5  # now tile 1 is simply wrong; tile 2 still holds tile 1's output
    assert om_parity(om, ref, labels, batch_size=1).swapped == (("scan a, tile 2", "scan a, tile 1"),)
    assert om_parity({"1": ref["1"] + 1.5}, ref, labels, batch_size=1).swapped == ()


def test_parity_flip_limit_is_the_option():
    rng = np.random.default_rng(1)
    ref = logprobs(rng)
    om = ref.copy()
    flat = om.reshape(-1, 2)
    flat[:3] = flat[:3, ::-1]  # 3 of 256 voxels change label
    assert not om_parity({"0": om}, {"0": ref}, {}, 1).passed
    assert om_parity({"0": om}, {"0": ref}, {}, 1, om_tolerance(max_flip_fraction=0.02)).tiles[0].result.flips == 3


def test_batch_invariance_counts_label_flips_not_noise():
    rng = np.random.default_rng(2)
    a = [logprobs(rng) for _ in range(3)]
    noisy = [x + np.float32(1e-4) for x in a]
    verdict = om_batch_invariance(((f"t{i}", x, y) for i, (x, y) in enumerate(zip(a, noisy))), batch_size=16)
    assert verdict.passed and verdict.flips == 0 and verdict.max_abs == pytest.approx(1e-4, rel=1e-2)
    flipped = [x.copy() for x in a]
    flipped[2].reshape(-1, 2)[:5] = flipped[2].reshape(-1, 2)[:5, ::-1]
    verdict = om_batch_invariance(((f"t{i}", x, y) for i, (x, y) in enumerate(zip(a, flipped))), 16)
    assert not verdict.passed and verdict.tiles_with_flips == (("t2", 5),)
    assert verdict.explanation().startswith("FAIL OM bs1 vs bs16: 5/768 voxels change label")
    nan = [x.copy() for x in a]
    nan[0][0, 0, 0, 0] = np.nan
    assert not om_batch_invariance(zip("abc", a, nan), 16).passed


def _refs(rng, n=2):
    return {mode: logprobs(rng, n) for mode in ("batch", "instance", "running")}


def test_bn_semantics_names_a_clear_winner():
    rng = np.random.default_rng(3)
    refs = _refs(rng)
    om = refs["running"].astype(np.float16).astype(np.float32)
    finding = bn_semantics(om, refs, batch_size=2)
    assert finding.clear and finding.closest == "running" and finding.matches
    assert finding.explanation().startswith("PASS OM implements RUNNING BN")
    assert set(finding.criterion_details()["distances"]) == {"batch", "instance", "running"}


def test_bn_semantics_is_ambiguous_between_close_candidates():
    rng = np.random.default_rng(4)
    refs = _refs(rng)
    refs["instance"] = refs["batch"] + np.float32(0.01)
    om = refs["batch"] + np.float32(0.006)  # between the two: 0.006 from batch, 0.004 from instance
    finding = bn_semantics(om, refs, batch_size=2, margin=2.0)
    assert not finding.clear and {finding.closest, finding.runner_up} == {"batch", "instance"}
    assert finding.explanation().startswith("FAIL AMBIGUOUS BN semantics")


def test_bn_semantics_closest_but_not_matching_says_so():
    rng = np.random.default_rng(5)
    refs = _refs(rng)
    om = refs["running"] + np.float32(1.2)  # nearest to running, but no match (e.g. other running statistics)
    finding = bn_semantics(om, refs, batch_size=4)
    assert finding.clear and finding.closest == "running" and not finding.matches
    assert "but outside the OM parity tolerance" in finding.explanation()


def test_bn_semantics_merges_batch_and_instance_at_bs1():
    rng = np.random.default_rng(6)
    refs = _refs(rng, n=1)
    finding = bn_semantics(refs["instance"].copy(), refs, batch_size=1)
    assert set(finding.distances) == {MERGED_AT_BS1, "running"} and finding.closest == MERGED_AT_BS1
    assert math.isinf(finding.ratio) and finding.criterion_details()["ratio"] is None
    with pytest.raises(ValueError, match="unknown BN semantics"):
        bn_semantics(refs["running"], {"folded": refs["running"]}, 1)


def test_perf_on_a_310p3_card_fixture_files():
    """bs1: ais_bench pure sweep, mean 41.59594725 ms -> 24.0408 fps per chip; bs16: a dataset run's summary,
    mean 614.2329915 ms -> 26.0487 fps. A 310P3 card has one chip."""
    chosen = {1: parse_perf_file(PERF / "perf_bs1_summary.json").measurements,
              16: parse_perf_file(PERF / "result_bs16_summary.json").measurements}
    judgement = throughput([m for ms in chosen.values() for m in ms], reference_t4_thresholds(),
                           soc_version="Ascend310P3", batch_sizes=(1, 16), kinds={1: "pure", 16: "dataset"})
    v1, v16 = judgement.verdicts[1], judgement.verdicts[16]
    assert v1.card_fps == pytest.approx(1000 / 41.59594725) and v1.ratio == pytest.approx(24.0408 / 10.31899, 1e-4)
    assert v16.card_fps == pytest.approx(16000 / 614.2329915364584)
    assert v1.passed and v16.passed
    assert judgement.placement.tier == "Benchmark" and judgement.placement.perf_status == "PERFECT"
    # 310P rule: >= 1.2 x the port's 310 card (bs1 4 x 6.10496 = 24.42 -> 29.30) and >= 1.6 x T4: fails.
    rule = {r.batch_size: r for r in judgement.rule_310p}
    assert not rule[1].passed and rule[1].needed_vs_310 == pytest.approx(1.2 * 4 * 6.10496)
    details = judgement.details(16)
    assert details["figure_kind"] == "dataset" and details["run_validity_ok"] is False  # 3 timed calls
    assert details["runs"][0]["latency_ms"]["p99"] == pytest.approx(618.1563696289063)
    assert "only 3 timed calls" in details["runs"][0]["validity"]


def test_perf_without_a_figure_has_no_verdict():
    judgement = throughput([], reference_t4_thresholds(), soc_version="Ascend310", batch_sizes=(1, 16))
    assert judgement.verdicts[1].passed is None and judgement.placement.tier is None
    assert judgement.rule_310p == []
    assert judgement.throughput_criterion(1).verdict == "skip" and judgement.tier_criterion().verdict == "skip"
    required = throughput([], reference_t4_thresholds(), soc_version="Ascend310", batch_sizes=(1, 16), required=(1, 16))
    tier = required.tier_criterion()
    assert tier.verdict == "fail" and tier.reason.startswith("required and not measured")


def test_an_om_closest_to_batch_statistics_is_not_a_pass_it_is_batch_dependent():
    """An identification does not pass a batch-dependent OM: ``batch`` is the port's defect, and the message says
    what it means for the labels."""
    from vnet_accept.judge.om import bn_semantics_criterion

    rng = np.random.default_rng(7)
    refs = _refs(rng)
    om = refs["batch"].astype(np.float16).astype(np.float32)
    finding = bn_semantics(om, refs, batch_size=2)
    assert finding.clear and finding.closest == "batch" and finding.batch_dependent and not finding.passed
    assert finding.explanation().startswith("FAIL the OM is BATCH-DEPENDENT")
    c = bn_semantics_criterion(om, refs, 2, 2.0, finding.tolerance, basis="test")
    assert c.verdict == "fail" and c.measured == "batch (batch-dependent)"
    running = bn_semantics_criterion(refs["running"], refs, 2, 2.0, finding.tolerance, basis="test")
    assert running.verdict == "pass" and running.measured == "running"
