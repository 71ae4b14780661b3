"""Issue 12: ``vnet-accept report`` validates gate-report.json first and writes nothing when it is invalid."""

from __future__ import annotations

import json

import pytest

from vnet_accept.errors import UsageError
from vnet_accept.report.publish import rerender
from vnet_accept.report.record import SCHEMA_VERSION, load_report, report_problem


def _valid(build) -> dict:
    return build.report_of(build.functional(), complete=True)


@pytest.mark.parametrize(("edit", "named"), [
    (lambda r: r.update(schema_version="one"), "schema_version"),
    (lambda r: r.update(schema_version=99), "newer than this vnet-accept reads"),
    (lambda r: r.pop("summary"), "summary.overall"),
    (lambda r: r.update(summary={"overall": "pass", "counts": []}), "summary.counts"),
    (lambda r: r.update(criteria={"a": 1}), "criteria is missing or not a list"),
    (lambda r: r["criteria"].insert(0, "parity"), "criteria[0] is a str"),
    (lambda r: r["criteria"][0].update(verdict="PASSED"), "verdict is 'PASSED'"),
    (lambda r: r["criteria"][0].pop("id"), "criteria[0].id is None"),
    (lambda r: r["criteria"][1].update(details=[1, 2]), "details is a list"),
    (lambda r: r["criteria"][1].update(reason=7), "reason is 7"),
    (lambda r: r.update(gate={"exit_code": "0"}), "gate.exit_code"),
    (lambda r: r.update(complete="yes"), "complete is 'yes'"),
    (lambda r: r.update(provenance=[]), "provenance is a list"),
])
def test_each_contract_violation_is_named(build, edit, named):
    report = _valid(build)
    assert len(report["criteria"]) >= 2 and report_problem(report) is None
    edit(report)
    assert named in report_problem(report)


@pytest.mark.parametrize("content", ['{"schema": "vnet-accept/gate-re', "[]", "null", '{"schema": "other"}',
                                     b"\xff\xfe\x00binary"])
def test_an_invalid_report_is_refused_and_nothing_is_written(tmp_path, content):
    folder = tmp_path / "gate-report"
    folder.mkdir()
    data = content if isinstance(content, bytes) else content.encode()
    (folder / "gate-report.json").write_bytes(data)
    (folder / "gate-report.md").write_text("the old Markdown\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError, match=r"gate-report.json .*nothing was written"):
        rerender(folder)
    with pytest.raises(UsageError, match="nothing was written"):
        rerender(folder, tmp_path / "elsewhere")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no staging folder, no output folder
    assert (folder / "gate-report.json").read_bytes() == data and (folder / "gate-report.md").read_text() == \
        "the old Markdown\n"


def test_a_valid_report_still_loads_and_renders(build, tmp_path, monkeypatch):
    monkeypatch.setattr("vnet_accept.report.figures.render_figures",
                        lambda report, directory: {"parity_margins": {"reason": "not drawn in this test"}})
    folder = tmp_path / "gate-report"
    folder.mkdir()
    (folder / "gate-report.json").write_text(json.dumps(_valid(build)))
    assert load_report(folder)["schema_version"] == SCHEMA_VERSION
    assert (rerender(folder) / "gate-report.md").is_file()


def test_a_schema_1_report_still_loads_and_renders(build, tmp_path, monkeypatch):
    """Reports written before summary.overall became the verdict on the port (schema 1 said "pass") stay readable."""
    monkeypatch.setattr("vnet_accept.report.figures.render_figures",
                        lambda report, directory: {"parity_margins": {"reason": "not drawn in this test"}})
    folder = tmp_path / "gate-report"
    folder.mkdir()
    old = _valid(build)
    old["schema_version"], old["summary"]["overall"] = 1, "pass"
    (folder / "gate-report.json").write_text(json.dumps(old))
    assert load_report(folder)["summary"]["overall"] == "pass"
    assert (rerender(folder) / "gate-report.md").is_file()
