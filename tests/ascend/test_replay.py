"""Replay plumbing: the ``npu`` gate criteria judging a ``--npu-results`` folder built here from a width-4
VNet's ONNX Runtime outputs (rounded through fp16) and our own perf files.

These prove that discovery, matching, criteria and messages work end to end on a machine without CANN. They say
nothing about an NPU: the "OM outputs" are ONNX Runtime's.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.metrics.masks import MaskSource

pytestmark = pytest.mark.npu

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ascend"
STANDINS = FIXTURES / "standins"


def _error_pct(setup, outputs: dict) -> float:
    """The pooled error rate of ``outputs`` against the masks, computed here without the gate's post-processor."""
    wrong = total = 0
    with MaskSource(setup.dataset.root) as masks:
        for e in setup.dataset.manifest.entries:
            out = outputs[e.stem].astype(np.float16).astype(np.float32)
            predicted = out[..., 1] > out[..., 0]
            mask = masks.tile(e.uid, e.tile)
            wrong += int(np.count_nonzero(predicted != mask))
            total += mask.size
    return 100.0 * wrong / total


def test_replay_plumbing_judges_a_good_folder(narrow_setup, replay_folder, gate_on):
    run = gate_on(replay_folder(), "--batch-sizes", "1,2", "--soc-version", "Ascend310")
    criteria = run.criteria
    verdicts = {cid: c["verdict"] for cid, c in criteria.items()}
    assert verdicts == {
        "om.atc.bs1": "pass", "om.atc.bs2": "pass", "om.inputs_match": "pass",
        "accuracy.error_rate.om_bs1": "pass", "accuracy.error_rate.om_bs2": "pass",
        "om.parity.om_vs_onnx.bs1": "pass", "om.parity.om_vs_onnx.bs2": "pass",
        "om.batch_invariance.bs1_vs_bs2": "pass", "om.bn_semantics": "pass",
        "perf.throughput.bs1": "pass", "perf.throughput.bs2": "skip", "perf.tier": "skip", "perf.rule_310p": "skip",
        "om.tiles_in_place.bs1": "pass", "om.tiles_in_place.bs2": "pass",
    }, run.text()
    assert run.counts() == {"passed": 12, "skipped": 3}
    expected = _error_pct(narrow_setup, narrow_setup.running)
    for bs, layout in ((1, "benchmark"), (2, "ais_bench")):
        acc = criteria[f"accuracy.error_rate.om_bs{bs}"]
        assert acc["measured"] == pytest.approx(expected, abs=1e-9)
        assert f"({layout}), OM bs{bs}, fp16 (ATC force_fp16)" in acc["basis"] and acc["details"]["tiles"] == 2
    bn = criteria["om.bn_semantics"]
    assert bn["measured"] == "running" and bn["details"]["clear"] and bn["details"]["matches"]
    assert bn["details"]["batch_size"] == 2 and "filesinfo of result_bs2_summary.json" in bn["basis"]
    parity = criteria["om.parity.om_vs_onnx.bs2"]["details"]
    assert parity["comparison"]["red"] < 1e-3 and len(parity["tiles"]) == 2
    assert criteria["om.batch_invariance.bs1_vs_bs2"]["details"]["flips"] == 0
    bs1 = criteria["perf.throughput.bs1"]
    assert bs1["measured"] == pytest.approx(4 * 6.5)  # legacy Interface throughputRate per chip × 4 chips
    assert bs1["details"]["ratio"] == pytest.approx(26.0 / 10.31899)
    assert bs1["details"]["t4_basis"] == "median" and bs1["details"]["figure_kind"] == "dataset"
    assert "no T4 threshold" in criteria["perf.throughput.bs2"]["reason"]
    assert "lack bs16" in criteria["perf.tier"]["reason"]


def test_replay_plumbing_names_the_bn_semantics_of_a_batch_statistics_om(narrow_setup, replay_folder, gate_on):
    """bs2 'OM' outputs from the batch-statistics export: the gate names BATCH and fails it (batch-dependent, never
    a pass), and bs1 vs bs2 labels differ."""
    results = replay_folder(bs2="batch")
    compare = results / "compare" / "20240917101010"  # msit debug compare's per-operator CSV, copied from the host
    compare.mkdir(parents=True)
    shutil.copy(FIXTURES / "msit_compare_vnet_bs1.csv", compare / "result_20240917101010.csv")
    run = gate_on(results, "--batch-sizes", "1,2", "--soc-version", "Ascend310", "-k",
                  "bn_semantics or batch_invariance or parity", "--onnx", str(narrow_setup.onnx["running"]))
    criteria = run.criteria
    om_parity = criteria["om.parity.om_vs_onnx.bs2"]
    assert "first operator below cosine 0.99 in result_20240917101010.csv: operator #6 Conv3D" in om_parity["reason"]
    assert om_parity["reason"].endswith("in down_tr32.ops.0.conv1") and "(--onnx, sha256 " in om_parity["basis"]
    bn = criteria["om.bn_semantics"]
    assert (bn["verdict"], bn["measured"]) == ("fail", "batch (batch-dependent)"), bn["reason"]
    assert bn["reason"].startswith("FAIL the OM is BATCH-DEPENDENT") and bn["details"]["closest"] == "batch"
    assert bn["details"]["ratio"] is None or bn["details"]["ratio"] > 2
    inv = criteria["om.batch_invariance.bs1_vs_bs2"]
    assert inv["verdict"] == "fail" and inv["details"]["flips"] > 0
    assert criteria["om.parity.om_vs_onnx.bs2"]["verdict"] == "fail"  # vs the running export it came from
    assert criteria["om.parity.om_vs_onnx.bs1"]["verdict"] == "pass"
    assert run.has_line("*FAIL OM bs1 vs bs2: * voxels change label*")


def test_replay_plumbing_fails_a_bad_folder_with_its_reasons(narrow_setup, replay_folder, gate_on):
    """A wrong manifest (tile 1's sha256), ais_bench's folder holding the legacy tool's 1-based names (SPEC §9) and
    no bs16 folder: each criterion fails naming its defect."""
    results = replay_folder(manifest="wrong", bs2_index=1)
    run = gate_on(results, "--batch-sizes", "1,2,16", "--soc-version", "Ascend310", "-k",
                                "inputs_match or error_rate or parity")
    criteria = run.criteria
    inputs = criteria["om.inputs_match"]
    assert inputs["verdict"] == "fail" and "1.bin (scan" in inputs["reason"] and "another sha256" in inputs["reason"]
    wrong_inputs = criteria["accuracy.error_rate.om_bs1"]  # bs1's outputs are fine: the inputs are not
    assert wrong_inputs["verdict"] == "fail" and wrong_inputs["reason"].startswith("WRONG INPUTS: 1 of 2 tiles differ")
    assert criteria["om.parity.om_vs_onnx.bs1"]["reason"].startswith("WRONG INPUTS")
    for cid in ("accuracy.error_rate.om_bs2", "om.parity.om_vs_onnx.bs2"):
        assert criteria[cid]["verdict"] == "fail" and "2 output_index" in criteria[cid]["reason"], criteria[cid]
    for cid in ("accuracy.error_rate.om_bs16", "om.parity.om_vs_onnx.bs16"):
        assert criteria[cid]["verdict"] == "fail" and "no bs16 results" in criteria[cid]["reason"]
    assert run.counts() == {"failed": 7}
    assert run.has_line("*output index 1 where ais_bench writes 0_0.bin*")
    assert run.has_line("*expected result_bs16/<stem>_0.bin from ais_bench*")


def test_live_plumbing_with_stand_in_tools(narrow_setup, gate_on, stand_in, tmp_path):
    """No --npu-results but 'tools' present: the gate runs ATC and ais_bench (stand-ins) into a folder of the
    replay layout and judges it with the same criteria. The stand-in's outputs are constants, so parity must fail
    and say so; what this shows is the live wiring (OM cache, layout, ATC record, pure sweep), not an NPU."""
    atc = stand_in("atc", Path(FIXTURES / "atc_success_vnet_bs1.txt"), om_suffix=".om")
    ais_bench = f"{sys.executable} {STANDINS / 'ais_bench_standin.py'}"
    run = gate_on(None, "--atc", str(atc.path), "--ais-bench", ais_bench, "--soc-version", "Ascend310",
                                "--batch-sizes", "1,2", "--npu-loops", "5", "-k", "inputs_match or bs1 or invariance")
    criteria = run.criteria
    verdicts = {cid: c["verdict"] for cid, c in criteria.items()}
    assert verdicts["om.atc.bs1"] == "pass" and criteria["om.atc.bs1"]["details"]["om"].endswith("vnet_bs1.om")
    assert verdicts["om.inputs_match"] == "pass" and verdicts["om.batch_invariance.bs1_vs_bs2"] == "pass"
    assert verdicts["accuracy.error_rate.om_bs1"] == "pass"  # measured; --tolerance-pp 100
    assert criteria["accuracy.error_rate.om_bs1"]["details"]["source_kind"] == "live"
    assert verdicts["om.parity.om_vs_onnx.bs1"] == "fail"
    perf = criteria["perf.throughput.bs1"]  # stand-in console: mean 40.8 ms at bs1 on one chip, × 4 chips
    assert perf["verdict"] == "pass" and perf["details"]["figure_kind"] == "pure"
    assert perf["measured"] == pytest.approx(4 * 1000 / 40.8)
    assert len(atc.calls) == 2  # one conversion per batch size (bs2 for the invariance check), then the OM cache


def test_replay_plumbing_throughput_on_a_310p3_folder_without_the_dataset(inner_gate, tmp_path):
    """Throughput only: no --luna16-root, so the tile-based criteria skip saying what to pass (a synthetic stand-in
    dataset could never match a host's results); the SoC comes from the folder's npu-smi.txt (310P3: one chip a
    card), bs1 from a pure sweep and bs16 from a dataset run's summary (our fixture files). Tier and 310P rule are
    checked against numbers worked out by hand."""
    import shutil

    perf = FIXTURES.parent / "perf"
    results = tmp_path / "npu-results"
    (results / "perf").mkdir(parents=True)
    shutil.copy(perf / "perf_bs1_summary.json", results / "perf")
    shutil.copy(perf / "result_bs16_summary.json", results)
    shutil.copy(FIXTURES / "npu_smi_info_310p3_with_processes.txt", results / "npu-smi.txt")
    run = inner_gate("--npu-results", str(results), "--batch-sizes", "1,16")
    criteria = run.criteria
    bs1, bs16 = criteria["perf.throughput.bs1"], criteria["perf.throughput.bs16"]
    assert bs1["verdict"] == bs16["verdict"] == "pass"
    assert bs1["measured"] == pytest.approx(1000 / 41.59594725) and bs1["details"]["chips_per_card"] == 1
    assert "Ascend310P3 from npu-results/npu-smi.txt" in bs1["basis"]
    assert bs16["details"]["run_validity_ok"] is False
    assert "only 3 timed calls" in bs16["details"]["runs"][0]["validity"]
    tier = criteria["perf.tier"]
    assert (tier["verdict"], tier["measured"], tier["details"]["perf_status"]) == ("pass", "Benchmark", "PERFECT")
    rule = criteria["perf.rule_310p"]  # 24.04 < 1.2 × 24.42 (the port's 310 card at bs1)
    assert rule["verdict"] == "fail" and rule["measured"] == 2 and "FAIL 310P rule bs1" in rule["reason"]
    assert run.counts() == {"passed": 3, "failed": 1, "skipped": 11}  # the tile criteria need the dataset
    skipped = {cid: c["reason"] for cid, c in criteria.items() if c["verdict"] == "skip"}
    assert sum("pass --luna16-root" in r for r in skipped.values()) == 9
    assert sum(r.startswith("no ATC console for bs") for r in skipped.values()) == 2


def test_replay_throughput_fails_a_chips_per_card_the_soc_contradicts(inner_gate, tmp_path):
    """Planted defect 9 through the gate itself: a 310P3 folder (one chip a card) judged with --chips-per-card 4
    would pass the T4 4× over-stated; the throughput criterion fails naming the contradiction instead."""
    import shutil

    results = tmp_path / "npu-results"
    (results / "perf").mkdir(parents=True)
    shutil.copy(FIXTURES.parent / "perf" / "perf_bs1_summary.json", results / "perf")
    shutil.copy(FIXTURES / "npu_smi_info_310p3_with_processes.txt", results / "npu-smi.txt")
    run = inner_gate("--npu-results", str(results), "--batch-sizes", "1", "--chips-per-card", "4")
    bs1 = run.criteria["perf.throughput.bs1"]
    assert bs1["verdict"] == "fail", run.text()
    assert bs1["reason"].startswith("FAIL card basis: chips per card 4 (--chips-per-card) contradicts SoC "
                                    "Ascend310P3 (npu-results/npu-smi.txt)")
    assert "4× over-stated" in bs1["reason"]
