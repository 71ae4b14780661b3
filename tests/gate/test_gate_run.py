"""``vnet-accept gate`` end to end on a tiny inner suite: the files, the verdicts, the ini, the exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest


def _report(folder):
    return json.loads((folder / "gate-report.json").read_text())


def test_default_run_writes_the_whole_report(gate_cli, report_dir, gate_workdir):
    code, out, err = gate_cli()
    assert code == 0, out + err
    names = sorted(p.name for p in report_dir.iterdir())
    assert names == ["gate-report.json", "gate-report.md", "junit.xml", "modelzoo_level.txt", "parity_margins.png"]
    report = _report(report_dir)
    assert report["complete"] is True and report["gate"]["exit_code"] == 0
    assert report["summary"]["counts"] == {"pass": 2, "fail": 0, "skip": 1, "error": 0}
    assert report["provenance"]["command_line"][:2] == ["vnet-accept", "gate"]
    assert report["settings"]["tolerance_pp"] == 1.0 and report["settings"]["batch_sizes"] == [1, 4, 8, 16, 32]
    assert report["settings"]["gate_report"] == str(report_dir)  # not the staging folder it was written into
    assert "(every criterion's line: vnet-accept gate -- -v, or gate-report.md)" in out  # the gate's own spelling
    assert f"--gate-report={report_dir}" in report["provenance"]["pytest_args"]
    assert not any("staging" in arg for arg in report["provenance"]["pytest_args"])
    assert "seeded stand-in weights" in report["gate"]["judged_on"][0]
    md = (report_dir / "gate-report.md").read_text()
    # Stand-in weights and no OM results: what was judged passed (exit 0), but the port was not gated.
    assert "**Verdict: NOT READY TO FILE** — 2 of 3 criteria passed, none failed, 1 not judged" in md
    assert "The port was **not gated**" in md and "seeded stand-in" in md
    assert "| `onnxrt` | 0.5646 % |" in md and "| 2e-06 |" in md
    assert "![Measured difference against each threshold](parity_margins.png)" in md
    assert (report_dir / "modelzoo_level.txt").read_text() == "FuncStatus:NOK\nPrecisionStatus:NOK\nPerfStatus:NOK\n"
    suite = ET.parse(report_dir / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == 3 and int(suite.get("skipped")) == 1
    # The terminal ends with the verdict block.
    lines = out.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if " vnet-accept gate: NOT READY TO FILE " in line)
    tail = lines[start:]
    assert len(tail) <= 14 and tail[-1] == "=" * len(tail[0]), tail
    assert tail[1] == "2 of 3 criteria passed, none failed, 1 not judged"
    assert tail[2].startswith("not gated: the checkpoint is a seeded stand-in")
    assert any(line.startswith("exit 0: every criterion judged here passed, but the port was not gated")
               for line in tail)
    assert report["readiness"]["verdict"] == "not gated" and report["readiness"]["gated"] is False
    assert any(line.startswith("  an Ascend NPU") and "--npu-results" in line for line in tail)
    assert any(str(report_dir / "gate-report.md") in line for line in tail)
    assert "gate report: " not in out  # the criteria section does not name the staging folder, which is renamed
    assert not [ln for ln in out.splitlines() if ln.startswith("gate: ")]  # the block below says the verdict
    assert not [p for p in gate_workdir.iterdir() if ".staging-" in p.name or p.name.endswith(".incomplete")]
    assert not (gate_workdir / ".benchmarks").exists()  # the gate runs no benchmark: no empty folder left behind
    # `vnet-accept report` renders the same folder again from its JSON.
    from vnet_accept.cli import main

    md_before = (report_dir / "gate-report.md").read_text()
    (report_dir / "gate-report.md").unlink()
    assert main(["report", str(report_dir)]) == 0
    assert (report_dir / "gate-report.md").read_text() == md_before


GATED_SUITE = '''
from vnet_accept.judge.criterion import judged
from vnet_accept.report.readiness import REQUIRED_CRITERIA


def test_required(gate_record):
    for cid in REQUIRED_CRITERIA:
        gate_record.record(judged(cid, "a required criterion", True, measured=1.0))
'''


def test_a_gated_run_is_the_only_pass(gate_cli, report_dir, tmp_path, no_figures):
    """PASS, ready to file: the contributor's weights and every required criterion judged; the headline, the
    Markdown and modelzoo_level.txt agree."""
    from vnet_accept.model.checkpoint import write_random_checkpoint

    weights = write_random_checkpoint(tmp_path / "w.pth.tar", seed=0, width=2)
    code, out, err = gate_cli("--weights", str(weights), suite=GATED_SUITE)
    assert code == 0, out + err
    assert "vnet-accept gate: PASS " in out and "the port is ready to file" in out and "not gated" not in out
    report = _report(report_dir)
    assert report["readiness"]["verdict"] == "ready" and report["readiness"]["gated"] is True
    md = (report_dir / "gate-report.md").read_text()
    assert "**Verdict: PASS** — 6 of 6 criteria passed, none failed, 0 not judged." in md and "Gated:" in md
    # The same run without --weights is not gated: NOT READY TO FILE everywhere, NOK in modelzoo_level.txt.
    code, out, err = gate_cli(suite=GATED_SUITE)
    assert code == 0 and "vnet-accept gate: NOT READY TO FILE " in out
    assert "not gated: the checkpoint is a seeded stand-in" in out
    assert "**Verdict: NOT READY TO FILE**" in (report_dir / "gate-report.md").read_text()
    assert (report_dir / "modelzoo_level.txt").read_text() == "FuncStatus:NOK\nPrecisionStatus:NOK\nPerfStatus:NOK\n"
    assert all(not s["judged"] and s["reason"].startswith("not gated (") for s in _report(report_dir)["modelzoo"])


def test_failing_configuration_exits_1_and_says_why(gate_cli, report_dir, no_figures):
    code, out, _ = gate_cli("--tolerance-pp", "0")
    assert code == 1
    report = _report(report_dir)
    assert report["provenance"]["command_line"] == ["vnet-accept", "gate", "--tolerance-pp=0"]
    assert report["complete"] is True and report["gate"]["exit_code"] == 1
    failed = [c for c in report["criteria"] if c["verdict"] == "fail"]
    assert [c["id"] for c in failed] == ["accuracy.error_rate.onnxrt"]
    md = (report_dir / "gate-report.md").read_text()
    assert "**Verdict: FAIL**" in md and "Why it failed:" in md and "|Δ| 0.2096 pp vs 0.0 pp" in md
    assert "FAIL  accuracy.error_rate.onnxrt: 0.5646 %" in out


@pytest.mark.parametrize("ini", ["pytest.ini", "tox.ini"])
def test_ini_settings_of_the_working_directory_apply(ini, gate_cli, gate_workdir, report_dir, no_figures):
    (gate_workdir / ini).write_text("[pytest]\ntolerance_pp = 0\n")
    code, _, _ = gate_cli()
    assert code == 1
    report = _report(report_dir)
    assert report["settings"]["tolerance_pp"] == 0.0
    assert report["provenance"]["ini_file"] == str(gate_workdir / ini)


def test_from_the_repository_root(gate_cli, monkeypatch, tmp_path, pytestconfig, no_figures):
    monkeypatch.chdir(pytestconfig.rootpath)  # the repository's pytest.ini (addopts -m, strict markers) applies
    out_dir = tmp_path / "elsewhere"
    code, out, err = gate_cli("-o", str(out_dir))
    assert code == 0, out + err
    assert _report(out_dir)["provenance"]["rootdir"] == str(pytestconfig.rootpath)


def test_no_tests_is_an_environment_error(gate_cli, gate_workdir, report_dir):
    code, out, _ = gate_cli("--", "-k", "no_such_test")
    assert code == 2 and "no tests were collected" in out
    assert not report_dir.exists() and not (gate_workdir / "gate-report.incomplete").exists()


INTERRUPTING = '''
from vnet_accept.judge.criterion import judged


def test_first(gate_record):
    gate_record.record(judged("parity.first", "first", True, measured=0.0))


def test_interrupts():
    raise KeyboardInterrupt
'''


def test_interrupted_run_never_replaces_a_complete_report(gate_cli, report_dir, gate_workdir, no_figures):
    assert gate_cli()[0] == 0
    before = (report_dir / "gate-report.json").read_bytes()
    code, out, _ = gate_cli(suite=INTERRUPTING, name="test_tiny_interrupting.py")
    assert code == 2 and "interrupted" in out
    assert (report_dir / "gate-report.json").read_bytes() == before
    partial = gate_workdir / "gate-report.incomplete"
    assert (partial / "INCOMPLETE").exists() and _report(partial)["complete"] is False
    assert "**INCOMPLETE — not a gate result.**" in (partial / "gate-report.md").read_text()


def test_crash_while_drawing_keeps_the_verdicts(gate_cli, report_dir, gate_workdir, monkeypatch, no_figures):
    """A renderer bug costs the figures, never the verdicts: the report is published with the failure named."""
    def crash(report, directory):
        (directory / "half-drawn.png").write_bytes(b"\x89PNG")
        raise RuntimeError("renderer bug")

    monkeypatch.setattr("vnet_accept.report.figures.render_figures", crash)
    code, out, err = gate_cli()
    assert code == 0 and "could not be rendered (RuntimeError: renderer bug)" in err
    report = _report(report_dir)
    assert report["complete"] is True and {e["error"] for e in report["render_errors"]} == {
        "RuntimeError: renderer bug"}
    assert "renderer bug" in (report_dir / "gate-report.md").read_text()


def test_a_report_folder_that_cannot_be_written_keeps_the_previous_one(gate_cli, report_dir, gate_workdir,
                                                                          monkeypatch, no_figures):
    assert gate_cli()[0] == 0
    before = {p.name: p.read_bytes() for p in report_dir.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("vnet_accept.report.publish.format_modelzoo_level", disk_full)
    code, out, err = gate_cli()
    assert code == 2 and "writing the report failed (OSError: [Errno 28] No space left on device)" in err
    assert "vnet-accept gate: NOT READY TO FILE" in out  # the verdict is still said
    assert {p.name: p.read_bytes() for p in report_dir.iterdir()} == before
    partial = gate_workdir / "gate-report.incomplete"
    assert (partial / "INCOMPLETE").exists() and "No space left" in (partial / "render-error.txt").read_text()


def test_collection_error_and_stop_at_first_failure(gate_cli, gate_workdir, report_dir, no_figures):
    code, out, _ = gate_cli(suite="def test_broken(:\n", name="test_tiny_broken.py")
    assert code == 2 and "error(s) while collecting the criteria" in out and not report_dir.exists()
    code, out, _ = gate_cli("--tolerance-pp", "0", "--", "-x")
    assert code == 1 and "stopped early" in out and not report_dir.exists()
    assert _report(gate_workdir / "gate-report.incomplete")["complete"] is False
