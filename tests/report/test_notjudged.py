"""Skips grouped by what was missing (report/notjudged.py), on the reasons the fixtures and criteria really give."""

from __future__ import annotations

import pytest

from vnet_accept.report.notjudged import classify, not_judged, summary_line

REASONS = [
    ("no --npu-results DIR: pass a folder of results and logs copied from an Ascend host", "npu"),
    ("atc not found on PATH (looked in /usr/local/Ascend); source CANN's set_env.sh", "npu"),
    ("SoC version unknown: npu-smi not found", "npu"),
    ("chips per card unknown: pass --soc-version (Ascend310: 4 chips, Ascend310P: 1) or --chips-per-card N", "npu"),
    ("CUDA is not available (a CPU-only PyTorch build)", "gpu"),
    ("no NVIDIA GPU visible", "gpu"),
    ("seeded stand-in weights: error rate not meaningful; pass --vnet-weights vnet_model_best.pth.tar and "
     "--luna16-root/--test-uids to judge it (measured 49.9 %)", "checkpoint"),
    ("synthetic dataset: error rate not meaningful; pass --luna16-root (and --test-uids) to judge the trained "
     "weights on LUNA16", "luna16"),
    ("the shared reference folder is absent (the port's reference transcripts, real LUNA16 masks); pass --shared-dir "
     "DIR or set VNET_ACCEPT_SHARED=DIR", "shared"),
    ("something nobody anticipated", "other"),
    ("", "other"),
]


@pytest.mark.parametrize(("reason", "key"), REASONS)
def test_classify(reason, key):
    assert classify(reason).key == key


def test_a_criterion_can_say_what_it_needs(build):
    c = build.criterion("x.y", "skip", reason="unrelated words", details={"needs": "gpu"})
    assert not_judged([c])[0].missing.key == "gpu"


def test_groups_in_table_order_with_distinct_reasons(build):
    criteria = [build.criterion(f"c{i}", "skip", reason=reason) for i, (reason, _key) in enumerate(REASONS)]
    criteria += [build.criterion("judged", "pass", 1.0), build.criterion("c-again", "skip", reason=REASONS[0][0])]
    groups = not_judged(criteria)
    assert [g.missing.key for g in groups] == ["npu", "gpu", "checkpoint", "luna16", "shared", "other"]
    npu = groups[0]
    assert [c["id"] for c in npu.criteria] == ["c0", "c1", "c2", "c3", "c-again"]
    assert npu.reasons[0] == REASONS[0][0] and len(npu.reasons) == 4
    line = summary_line(npu, width=2)
    assert line.startswith("an Ascend NPU") and "5 criteria (c0, c1, … (3 more))" in line and "--npu-results" in line
    assert npu.to_dict()["criteria"] == ["c0", "c1", "c2", "c3", "c-again"]
