"""Unit tests for vnet_accept.report.record: criteria, their headline, the summary and the JSON gate report."""

from __future__ import annotations

import json

import pytest

from vnet_accept.judge.criterion import VERDICTS, Criterion
from vnet_accept.report import record
from vnet_accept.report.record import (
    REPORT_JSON,
    SCHEMA,
    SCHEMA_VERSION,
    build_report,
    load_report,
    package_versions,
    provenance,
    summarise,
    write_report,
)


def _c(cid: str, verdict: str, **kw) -> Criterion:
    return Criterion(id=cid, description=f"about {cid}", verdict=verdict, **kw)


def test_a_new_criterion_is_an_error_until_measured():
    c = Criterion(id="parity.onnxrt_vs_torch", description="ORT matches torch")
    assert c.verdict == "error" and c.measured is None
    assert c.headline() == "ERROR parity.onnxrt_vs_torch: not measured"


def test_an_unknown_verdict_is_rejected():
    with pytest.raises(ValueError, match="'passed'"):
        Criterion(id="x", description="", verdict="passed")


def test_headline_holds_verdict_value_units_threshold_and_reason():
    c = _c("accuracy.error_rate", "fail", measured=1.23456789, units="%", threshold="<= 1.355", reason="too many")
    assert c.headline() == "FAIL  accuracy.error_rate: 1.23457 % (threshold <= 1.355) — too many"
    assert _c("n", "pass", measured=3).headline() == "PASS  n: 3"
    assert _c("z", "pass", measured=0.0, units="fps").headline() == "PASS  z: 0 fps"


def test_to_dict_from_dict_round_trip_ignores_unknown_keys():
    c = _c("perf.bs1", "pass", measured=24.4, units="fps", threshold="> 10.31899", basis="card = 4 x chip",
           artifacts={"om": {"path": "/x.om", "sha256": "ab"}}, details={"chips": 4})
    data = json.loads(json.dumps(c.to_dict()))
    assert Criterion.from_dict({**data, "added_in_v2": 1}) == c


@pytest.mark.parametrize(("verdicts", "overall"), [
    (["pass", "pass"], "not gated"),  # nothing failed, but stand-in weights and no required criterion: never "pass"
    (["pass", "skip"], "not gated"),
    (["pass", "fail"], "fail"),
    (["pass", "error"], "fail"),
    (["skip", "error"], "fail"),
    (["skip", "skip"], "no verdict"),
    ([], "no verdict"),
])
def test_summarise_overall_verdict(verdicts, overall):
    s = summarise([_c(f"c{i}", v) for i, v in enumerate(verdicts)])
    assert s["overall"] == overall
    assert s["criteria"] == len(verdicts)
    assert s["counts"] == {v: verdicts.count(v) for v in VERDICTS}


def test_summary_overall_is_ready_only_when_the_port_was_gated():
    from vnet_accept.report.readiness import REQUIRED_CRITERIA

    required = [_c(cid, "pass") for cid in REQUIRED_CRITERIA]
    assert summarise(required, {"vnet_weights": "vnet_model_best.pth.tar"})["overall"] == "ready"
    assert summarise(required, {"vnet_weights": None})["overall"] == "not gated"  # the seeded stand-in
    assert summarise(required[1:], {"vnet_weights": "vnet_model_best.pth.tar"})["overall"] == "not gated"


def test_build_report_has_schema_settings_provenance_and_sorted_criteria():
    report = build_report([_c("b", "pass"), _c("a", "fail")], {"time_utc": "T"}, {"bn_mode": "running"})
    assert report["schema"] == SCHEMA == "vnet-accept/gate-report"
    assert report["schema_version"] == SCHEMA_VERSION == 2
    assert [c["id"] for c in report["criteria"]] == ["a", "b"]
    assert report["summary"]["overall"] == "fail"
    assert report["settings"] == {"bn_mode": "running"}
    assert report["provenance"] == {"time_utc": "T"}


def test_write_then_load_report_round_trips_by_directory_or_file(tmp_path):
    report = build_report([_c("a", "pass", measured=0.5)], provenance(command_line=["pytest"]), {})
    path = write_report(tmp_path / "out", report)
    assert path == tmp_path / "out" / REPORT_JSON
    assert load_report(tmp_path / "out") == json.loads(json.dumps(report))
    assert load_report(path)["criteria"][0]["measured"] == 0.5


def test_load_report_refuses_another_schema(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(ValueError, match="not a vnet-accept gate report"):
        load_report(tmp_path / "x.json")


def test_provenance_names_versions_machine_command_line_and_utc_time():
    prov = provenance(command_line=["pytest", "-m", "npu"], extra={"commit": "abc"})
    assert {"versions", "python", "machine", "user", "command_line", "cwd", "time_utc"} <= set(prov)
    assert prov["command_line"] == ["pytest", "-m", "npu"]
    assert prov["commit"] == "abc"
    assert prov["time_utc"].endswith("Z") and len(prov["time_utc"]) == len("2026-01-01T00:00:00Z")
    assert {"system", "machine", "node", "cpu_count"} <= set(prov["machine"])
    assert prov["versions"]["numpy"] == __import__("numpy").__version__
    json.dumps(prov)  # must be serialisable as is


def test_package_versions_marks_absent_packages(monkeypatch):
    monkeypatch.setattr(record, "_VERSIONED_PACKAGES", ("pytest", "surely-not-installed-pkg"))
    versions = package_versions()
    assert versions["pytest"] == pytest.__version__
    assert versions["surely-not-installed-pkg"] == "not installed"
