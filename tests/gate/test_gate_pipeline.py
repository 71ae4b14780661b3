"""The whole gate pipeline - record -> report -> figures - on the shapes the real criteria record (issue 14).

The accuracy chain's criterion is ``accuracy.error_rate.<source>`` where the source depends on the backend
``--backend auto`` picks on the day (ONNX Runtime or PyTorch), and the self-test's model records
``accuracy.error_rate.selftest_model`` beside it. Whichever sorts first, the report and its figures must be drawn,
and the per-volume figure must show the port's chain, never the self-test's model. The inner suite builds its
details with the same function the real criteria use (:func:`vnet_accept.judge.accuracy.error_rate_details`) on
real :class:`~vnet_accept.metrics.accuracy.AccuracyResult` objects, and records one criterion of every family.
"""

from __future__ import annotations

import json

import pytest

from vnet_accept.plugin.accuracy_fixtures import source_name
from vnet_accept.runners.backend_choice import CPU_BACKENDS

EVERY_FAMILY_SUITE = '''
import numpy as np
import pytest

from vnet_accept.metrics.accuracy import AccuracyResult, TileCounts, VolumeResult
from vnet_accept.reference import AccuracyReference
from vnet_accept.judge.accuracy import error_rate_details
from vnet_accept.judge.criterion import judged

SOURCE = "{source}"


class Report:  # a PostprocessReport's fields that error_rate_details reads
    def __init__(self, rates):
        tiles = tuple(TileCounts(f"1.2.{{i}}", 0, 1000, 5 * i, 3 * i) for i, _ in enumerate(rates))
        vols = tuple(VolumeResult(f"1.2.{{i}}", (0,), 1000, 5 * i, 3 * i, 409_600) for i, _ in enumerate(rates))
        self.result = AccuracyResult(tiles, vols, (0.0, 0.01))
        self.uids_listed, self.uids_used, self.source = len(rates), len(rates), "streamed"
        self.views = AccuracyReference().views(self.result.error_rate_pct)


def _record(gate_record, cid, subject):
    report = Report([0.1, 0.2, 0.3])
    gate_record.record(judged(cid, cid, True, measured=report.result.error_rate_pct, units="%",
                              threshold="|error − 0.355| ≤ 1.0 pp", basis="bs16, fp32",
                              reason=report.result.port_line(), **error_rate_details(report, subject)))


def test_chain(gate_record):
    _record(gate_record, f"accuracy.error_rate.{{SOURCE}}", "port")


def test_selftest_model(gate_record):
    _record(gate_record, "accuracy.error_rate.selftest_model", "selftest")


def test_every_other_family(gate_record):
    comparison = {{"max_abs": 2e-6, "flips": 0, "voxels": 409_600, "tolerance": {{"max_abs": 1e-4}}}}
    rows = [("parity.onnxrt_vs_torch.running.bs1_64x80x80", 2e-6, {{"comparison": comparison}}),
            ("batch_invariance.onnxrt.running.bs4", 0.0, {{"comparison": comparison}}),
            ("batch_dependence_detected.torch.bs4", 0.1, {{"comparison": dict(comparison, max_abs=0.1)}}),
            ("export.contract", {{"opset": 11}}, {{}}), ("checkpoint.loads_strictly", 45_603_934, {{}}),
            ("data.uid_coverage", 4, {{}}), ("selftest.mutation_score", "13/13", {{}}),
            ("accuracy.consistency.pooled_counts", 0, {{}}), ("om.parity.om_vs_onnx.bs1", 0.01, {{}}),
            ("perf.throughput.bs1", 24.42, {{"batch_size": 1, "chip_fps": 6.10496, "card_fps": 24.42,
                                             "chips_per_card": 4, "t4_fps": 10.31899, "t4_basis": "median",
                                             "ratio": 2.37}}),
            ("perf.tier", "Benchmark", {{}})]
    for cid, measured, details in rows:
        gate_record.record(judged(cid, cid, True, measured=measured, threshold="shown", reason="ok", **details))


def test_gpu_not_here(gate_record):
    gate_record.skip("gpu.parity.fp32", "CUDA fp32 vs ONNX Runtime", "no CUDA device: run on an NVIDIA GPU host")
'''

ALL_FILES = {"gate-report.json", "gate-report.md", "junit.xml", "modelzoo_level.txt", "per_volume_error.png",
             "fps_per_batch.png", "parity_margins.png"}


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_every_backend_auto_can_pick_renders_the_whole_report(backend, gate_cli, report_dir):
    source = source_name(backend)
    code, out, err = gate_cli(suite=EVERY_FAMILY_SUITE.format(source=source), name="test_tiny_families.py")
    assert code == 0, out + err
    assert ALL_FILES <= {p.name for p in report_dir.iterdir()}
    report = json.loads((report_dir / "gate-report.json").read_text())
    assert report["render_errors"] == []
    assert report["figures"]["per_volume_error"] == {"file": "per_volume_error.png"}
    assert "worst_volume" in report["figures"]  # no npz in this suite: a reason, not a crash
    md = (report_dir / "gate-report.md").read_text()
    assert f"| `{source}` |" in md and "| `selftest_model` |" in md


def test_one_broken_figure_costs_only_itself(gate_cli, report_dir, monkeypatch):
    from vnet_accept.report import figures

    def broken(report, path):
        raise AttributeError("'str' object has no attribute 'get'")

    monkeypatch.setitem(figures.RENDERERS, "parity_margins", broken)
    code, out, err = gate_cli()
    assert code == 0, out + err  # the criteria passed: the exit code says so
    report = json.loads((report_dir / "gate-report.json").read_text())
    assert report["figures"]["parity_margins"]["error"] == "AttributeError: 'str' object has no attribute 'get'"
    assert report["render_errors"] == [{"file": "parity_margins.png",
                                        "error": "AttributeError: 'str' object has no attribute 'get'"}]
    md = (report_dir / "gate-report.md").read_text()
    assert "**Verdict: NOT READY TO FILE**" in md and "`parity_margins.png`: AttributeError" in md
    assert "parity_margins.png could not be rendered" in err
    assert not (report_dir / "parity_margins.png").exists()
