"""Bad input: one line saying what is wrong and what to do, exit 2, and no report (the previous one untouched)."""

from __future__ import annotations

import json

import pytest


def _assert_refused(code, out, err, match, workdir):
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vnet-accept gate: error: ") and match in lines[0], lines[0]
    assert not [p.name for p in workdir.iterdir() if p.name.startswith((".gate-report", "gate-report"))
                and p.name != "gate-report"]


@pytest.fixture
def previous_report(gate_workdir):
    folder = gate_workdir / "gate-report"
    folder.mkdir()
    (folder / "gate-report.json").write_text(json.dumps({"previous": True}))
    return folder


def _files(workdir):
    (workdir / "garbage.pth.tar").write_bytes(b"this is not a checkpoint")
    (workdir / "empty_uids.txt").write_text("\n\n")
    (workdir / "a_file").write_text("")
    (workdir / "docs").mkdir()
    (workdir / "docs" / "notes.md").write_text("mine")


CASES = {
    # name: (arguments, part of the message)
    "weights missing": (["--weights", "nowhere.pth.tar"], "checkpoint nowhere.pth.tar does not exist"),
    "weights unreadable": (["--weights", "garbage.pth.tar"], "garbage.pth.tar cannot be"),
    "dataset path missing": (["--luna16", "no/such/luna16"],
                             "--luna16-root: LUNA16 root no/such/luna16 does not exist"),
    "empty UID file": (["--test-uids", "empty_uids.txt"], "no UIDs in the file"),
    "npu results folder missing": (["--npu-results", "results_from_ascend"], "no such folder"),
    "shared folder missing": (["--shared-dir", "nowhere"], "is not a folder"),
    "report dir is a file": (["-o", "a_file"], "is a file"),
    "report dir cannot be created": (["-o", "a_file/report"], "cannot write the report folder"),
    "report dir holds other things": (["-o", "docs"], "is not a gate report"),
    "bad input, report in new folders": (["-o", "new/sub/report", "--test-uids", "empty_uids.txt"], "no UIDs"),
    "alias and flag disagree": (["--weights", "a.pth", "--vnet-weights", "b.pth"], "conflict"),
    "option before and after --": (["--bn-mode", "running", "--", "--bn-mode", "batch"],
                                   "--bn-mode is running before -- and batch after it"),
    "junit after --": (["--", "--junitxml", "x.xml"], "--junitxml cannot be passed to the gate"),
    "collect-only after --": (["--", "--co"], "--co cannot be passed to the gate (it runs no criterion)"),
    "plugin disabled": (["--", "-p", "no:vnet_accept.plugin"], "disables the gate's own plugin"),
    "luna16 with synthetic options": (["--luna16", "x", "--synthetic-scans", "2"], "which --luna16 replaces"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_one_line(name, gate_cli, gate_workdir, previous_report):
    _files(gate_workdir)
    args, match = CASES[name]
    code, out, err = gate_cli(*args)
    _assert_refused(code, out, err, match, gate_workdir)
    assert json.loads((previous_report / "gate-report.json").read_text()) == {"previous": True}
    assert not (gate_workdir / "new").exists()  # folders made for the report are removed again


@pytest.mark.parametrize("where", ["pytest.ini", "environment"])
def test_bad_input_from_the_ini_or_the_environment(where, gate_cli, gate_workdir, monkeypatch):
    if where == "pytest.ini":
        (gate_workdir / "pytest.ini").write_text("[pytest]\nvnet_weights = nowhere.pth.tar\n")
        match = "--vnet-weights (ini setting vnet_weights in pytest.ini): checkpoint nowhere.pth.tar does not exist"
    else:
        monkeypatch.setenv("VNET_ACCEPT_SHARED", "/no/such/shared")
        match = "--shared-dir (from VNET_ACCEPT_SHARED): /no/such/shared is not a folder"
    code, out, err = gate_cli()
    _assert_refused(code, out, err, match, gate_workdir)
    assert not (gate_workdir / "gate-report").exists()


def test_bad_option_value_is_refused_before_anything_runs(gate_cli, gate_workdir):
    code, out, err = gate_cli("--tolerance-pp", "lots")
    assert code == 2 and "--tolerance-pp: expected a number, got 'lots'" in err
    assert not list(gate_workdir.iterdir())
