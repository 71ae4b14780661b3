"""Report folders: staged, swapped in atomically, incomplete runs marked, a crash mid-render leaves the previous
report untouched (report/publish.py)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from vnet_accept.errors import UsageError
from vnet_accept.report import publish
from vnet_accept.report.publish import INCOMPLETE, Staging, check_report_dir, remove_stale_staging, rerender


def _write_report(folder, report):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gate-report.json").write_text(json.dumps(report))


@pytest.fixture
def no_figures(monkeypatch):
    """Rendering without matplotlib (figures have their own tests)."""
    monkeypatch.setattr("vnet_accept.report.figures.render_figures",
                        lambda report, directory: {"parity_margins": {"reason": "not drawn in this test"}})


def test_rerender_in_place_and_elsewhere(build, tmp_path, no_figures):
    src = tmp_path / "gate-report"
    _write_report(src, build.report_of(build.functional(), complete=True))
    assert rerender(src) == src.absolute()
    names = sorted(p.name for p in src.iterdir())
    assert names == ["gate-report.json", "gate-report.md", "modelzoo_level.txt"]
    data = json.loads((src / "gate-report.json").read_text())
    assert [s["key"] for s in data["modelzoo"]] == ["FuncStatus", "PrecisionStatus", "PerfStatus"]
    assert data["files"] == ["gate-report.json", "gate-report.md", "modelzoo_level.txt"]
    mode = stat.S_IMODE(os.stat(src / "gate-report.md").st_mode)
    assert mode & 0o044, oct(mode)  # readable by others (mkstemp's 0600 relaxed to the umask)
    other = rerender(src / "gate-report.json", tmp_path / "copy")
    assert (other / "gate-report.md").read_text() == (src / "gate-report.md").read_text()
    assert not list(tmp_path.glob(".*staging*"))


def test_crash_mid_render_leaves_previous_report(build, tmp_path, monkeypatch, no_figures):
    target = tmp_path / "gate-report"
    _write_report(target, build.report_of(build.functional(), complete=True))
    rerender(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(*args, **kwargs):
        raise OSError(28, "disk on fire")

    monkeypatch.setattr(publish, "atomic_write_json", crash)  # the last write: everything else is staged
    with pytest.raises(OSError, match="disk on fire"):
        rerender(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    (staging,) = tmp_path.glob(".gate-report.staging-*")
    assert (staging / "modelzoo_level.txt").exists() and "INCOMPLETE" in (staging / INCOMPLETE).read_text()


def test_a_markdown_renderer_bug_still_writes_the_verdicts(build, tmp_path, monkeypatch, no_figures):
    target = tmp_path / "gate-report"
    _write_report(target, build.report_of(build.functional(), complete=True))

    def crash(*args, **kwargs):
        raise KeyError("views")

    monkeypatch.setattr(publish, "render_markdown", crash)
    rerender(target)
    md = (target / "gate-report.md").read_text()
    assert "could not be rendered (KeyError: 'views')" in md and "`PASS  export.contract" in md
    assert json.loads((target / "gate-report.json").read_text())["render_errors"] == [
        {"file": "gate-report.md", "error": "KeyError: 'views'"}]


def test_incomplete_run_kept_beside_the_report(build, tmp_path):
    target = tmp_path / "gate-report"
    _write_report(target, build.report_of([], complete=True))
    staging = Staging(target)
    _write_report(staging.path, build.report_of(build.functional()))
    where = staging.keep_incomplete("the run was interrupted (KeyboardInterrupt)")
    assert where == target.absolute().with_name("gate-report.incomplete")
    assert "interrupted" in (where / INCOMPLETE).read_text()
    assert json.loads((where / "gate-report.json").read_text())["complete"] is False
    assert json.loads((target / "gate-report.json").read_text())["complete"] is True
    assert INCOMPLETE not in os.listdir(target)


def test_publish_replaces_and_unmarks(build, tmp_path):
    target = tmp_path / "r"
    _write_report(target, {"old": True})
    staging = Staging(target)
    assert (staging.path / INCOMPLETE).exists() and staging.path.name.startswith(".r.staging-")
    (staging.path / "gate-report.json").write_text("{}")
    assert staging.publish() == target.absolute()
    assert sorted(os.listdir(target)) == ["gate-report.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize("kind", ["file", "foreign folder", "under a file"])
def test_refuses_report_folders_that_would_lose_something(kind, tmp_path):
    if kind == "file":
        target = tmp_path / "report.txt"
        target.write_text("mine")
        match = "is a file"
    elif kind == "foreign folder":
        target = tmp_path / "docs"
        target.mkdir()
        (target / "thesis.tex").write_text("mine")
        match = "is not a gate report"
    else:
        (tmp_path / "f").write_text("")
        target = tmp_path / "f" / "report"
        match = "cannot write the report folder"
    with pytest.raises(UsageError, match=match):
        Staging(target)
    with pytest.raises(UsageError):
        check_report_dir(target) if kind != "under a file" else Staging(target)
    assert not list(tmp_path.glob(".*staging*"))


def test_stale_staging_of_dead_runs_removed(tmp_path):
    dead = tmp_path / ".gate-report.staging-dead"
    dead.mkdir()
    (dead / INCOMPLETE).write_text("This vnet-accept gate report is INCOMPLETE ...\npid 999999999, 2026\n")
    alive = Staging(tmp_path / "gate-report")
    assert remove_stale_staging(tmp_path / "gate-report") == [dead]
    assert alive.path.exists()
