"""Issue 12: an ais_bench summary that is there but truncated is named as unreadable, never "expected"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vnet_accept.ascend.results_folder import collect_perf, load_npu_results
from vnet_accept.results.layouts import OUTPUT_SHAPE, write_output

GOOD = {"NPU_compute_time": {"min": 60.0, "max": 70.0, "mean": 65.0, "median": 64.0, "count": 20},
        "H2D_latency": {"mean": 1.0}, "D2H_latency": {"mean": 1.0}, "throughput": 246.15,
        "args": ["ais_bench", "--model", "vnet_bs16.om", "--batchsize", "16", "--input", "prep_bin"]}


def _folder(root: Path, bs: int, summary_text: str) -> None:
    for stem in range(2):
        write_output(root / f"result_bs{bs}", str(stem), np.zeros(OUTPUT_SHAPE, np.float32), "ais_bench")
    (root / f"result_bs{bs}_summary.json").write_text(summary_text)


def test_a_truncated_summary_is_named_as_unreadable_for_its_batch_size(tmp_path):
    text = json.dumps({**GOOD, "filesinfo": {"0": {"infiles": ["prep_bin/0.bin", "prep_bin/1.bin"]}}})
    _folder(tmp_path, 16, text[:40])  # cut mid-way, as an interrupted copy leaves it
    _folder(tmp_path, 1, "")  # empty
    evidence = collect_perf(load_npu_results(tmp_path))
    assert 16 not in evidence.chosen and 1 not in evidence.chosen
    assert "result_bs16_summary.json is there but unreadable (not valid JSON" in evidence.failures[16]
    assert "copy it again" in evidence.failures[16]
    assert "result_bs1_summary.json is there but unreadable (empty file)" in evidence.failures[1]
    plan = load_npu_results(tmp_path).batches[16].plan
    assert plan.assumed and "result_bs16_summary.json is unreadable" in plan.source


def test_a_readable_summary_gives_the_figure_and_no_failure(tmp_path):
    _folder(tmp_path, 16, json.dumps(GOOD))
    evidence = collect_perf(load_npu_results(tmp_path))
    assert 16 in evidence.chosen and not evidence.failures
