"""Every test of the gate's suite (``vnet_accept.checks``) decides a criterion, and the id it records when it skips
before measuring (no NPU, no GPU here) is spelled as the id it records when it measures: ``om.atc.bs16``, never
``om.atc[bs16]``; and a criterion that needs hardware states the threshold it would be held to. Collected
only (safe on any host: nothing runs), in a subprocess."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

PROBE = r"""
import json, sys
import pytest
from vnet_accept.plugin.records import criterion_id, marker_threshold

class Probe:
    rows = []
    def pytest_collection_finish(self, session):
        for item in session.items:
            marker = item.get_closest_marker("criterion")
            self.rows.append([item.nodeid, criterion_id(item, marker) if marker else None,
                              marker_threshold(item, marker) if marker else None])

probe = Probe()
code = pytest.main(["--pyargs", "vnet_accept.checks", "--collect-only", "-q", "-m", "not perf",
                    "-p", "no:cacheprovider", "-o", "addopts="], plugins=[probe])
print("PROBE " + json.dumps({"code": int(code), "rows": probe.rows}))
"""


@functools.cache  # one collection subprocess for both tests
def _collected() -> tuple[tuple[str, str | None, str | None], ...]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("PROBE "))
    result = json.loads(line[len("PROBE "):])
    assert result["code"] == 0, done.stdout[-2000:]
    return tuple(tuple(row) for row in result["rows"])


def test_every_gate_test_decides_a_criterion_under_the_id_it_measures():
    rows = _collected()
    assert len(rows) > 100
    unmarked = [nodeid for nodeid, cid, _ in rows if cid is None]
    assert not unmarked, f"tests of the gate without @pytest.mark.criterion (pytest would count them, the gate not): " \
                         f"{unmarked}"
    ids = [cid for _, cid, _ in rows]
    assert [i for i in ids if "[" in i or "{" in i] == [], "a parametrised criterion's id is not a filled template"
    assert len(set(ids)) == len(ids), "two tests record the same criterion id"
    for expected in ("om.atc.bs16", "accuracy.error_rate.om_bs1", "om.parity.om_vs_onnx.bs16", "perf.throughput.bs1",
                     "om.batch_invariance.bs1_vs_bs16", "batch_invariance.onnxrt.running.bs4",
                     "parity.onnxrt_vs_torch.running.bs16_16x16x16", "selftest.defect.swapped_outputs"):
        assert expected in ids


def test_a_criterion_that_needs_hardware_states_its_threshold_before_it_is_measured():
    """No NPU and no GPU here: the report still says what the missing measurements will have to meet, from the
    same functions and options the judgements use (the defaults: 0.355 % ± 1 pp, the reference port's T4 table)."""
    thresholds = {cid: threshold for _, cid, threshold in _collected()}
    hardware = [cid for cid in thresholds if cid.startswith(("om.", "perf.", "numerics.", "finite.", "cuda_graphs.",
                                                            "accuracy.error_rate.om_", "parity.onnxrt_vs_torch_cuda"))]
    assert len(hardware) > 20
    assert [cid for cid in hardware if not thresholds[cid]] == []
    assert thresholds["accuracy.error_rate.om_bs1"] == "|error − 0.355| ≤ 1.0 pp"
    assert thresholds["perf.throughput.bs1"].startswith("> T4 10.3")
    assert thresholds["om.atc.bs16"] == "exit status 0, 'ATC run success', no error code"
    assert thresholds["parity.onnxrt_vs_torch.running.bs1_64x80x80"].startswith("max|Δ| <= ")
