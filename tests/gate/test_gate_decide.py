"""The gate's exit status from pytest's and the criteria's (vnet_accept.gate.outcome.decide), and its options."""

from __future__ import annotations

import argparse

import pytest

from vnet_accept.gate.cmdline import ALIASES, MANAGED, add_gate_arguments, gate_option_args
from vnet_accept.gate.outcome import decide

OK = {"pass": 3, "fail": 0, "skip": 2, "error": 0}
FAILED = {"pass": 3, "fail": 1, "skip": 0, "error": 0}
ERRORED = {"pass": 3, "fail": 0, "skip": 0, "error": 1}
SKIPPED = {"pass": 0, "fail": 0, "skip": 4, "error": 0}

CASES = [
    # pytest exit, counts, keywords, (gate exit, complete, has_report), text
    (0, OK, {}, (0, True, True), "every applicable criterion passed; the port is ready to file (2 not judged"),
    # Stand-in weights or a required criterion not judged: exit 0 (what was judged passed), never "ready".
    (0, OK, {"gated": False}, (0, True, True), "every criterion judged here passed, but the port was not gated: "
                                               "not ready to file (2 not judged"),
    (1, FAILED, {}, (1, True, True), "1 criterion failed"),
    (0, FAILED, {}, (1, True, True), "1 criterion failed"),  # a criterion failed without failing its test
    (0, ERRORED, {}, (1, True, True), "1 criterion failed"),
    (1, OK, {"failed_tests": [{"nodeid": "t::x", "reason": "boom", "criterion": False}]}, (1, True, True),
     "1 test(s) failed without recording a criterion, first t::x: boom"),
    (0, SKIPPED, {}, (2, True, True), "nothing was judged"),
    (2, OK, {"interrupted": "KeyboardInterrupt: "}, (2, False, True), "interrupted (KeyboardInterrupt"),
    (2, None, {"collection_errors": [{"nodeid": "a.py", "reason": "SyntaxError"}]}, (2, False, False),
     "1 error(s) while collecting the criteria, first a.py: SyntaxError"),
    (3, None, {}, (2, False, False), "internal error"),
    (4, None, {}, (2, False, False), "rejected the command line"),
    (4, None, {"usage_error": "--weights: gone"}, (2, False, False), "--weights: gone"),
    (5, {"pass": 0, "fail": 0, "skip": 0, "error": 0}, {}, (2, False, False), "no tests were collected"),
    (0, None, {}, (2, False, False), "wrote no gate-report.json"),
    (1, FAILED, {"stopped_early": "stopping after 1 failures"}, (1, False, True), "stopped early"),
    (0, OK, {"stopped_early": "Interrupted: stop requested"}, (2, False, True), "stopped early"),
    (7, OK, {}, (2, False, True), "pytest exit status 7"),
]


@pytest.mark.parametrize(("pytest_code", "counts", "kw", "expected", "text"), CASES)
def test_exit_status_mapping(pytest_code, counts, kw, expected, text):
    outcome = decide(pytest_code, counts, **kw)
    assert (outcome.exit_code, outcome.complete, outcome.has_report) == expected, outcome
    assert text in outcome.explanation


def test_gate_options_are_the_plugin_table():
    from vnet_accept.options import OPTIONS, OPTIONS_BY_DEST

    parser = argparse.ArgumentParser()
    add_gate_arguments(parser)
    dests = {a.dest for a in parser._actions}
    assert {o.dest for o in OPTIONS if o.dest not in MANAGED} <= dests
    assert set(ALIASES) <= set(OPTIONS_BY_DEST)
    ns = parser.parse_args(["--weights", "w.pth", "--luna16", "/data", "--batch-sizes", "1,16", "-o", "r"])
    assert ns.vnet_weights == "w.pth" and ns.luna16_root == "/data" and ns.output == "r"
    assert gate_option_args(ns) == ["--vnet-weights=w.pth", "--luna16-root=/data", "--batch-sizes=1,16"]
    assert parser.parse_args(["--gate-report", "x"]).output == "x"


def test_evidence_copied_into_the_report_folder(tmp_path):
    from vnet_accept.gate.finalise import copy_evidence

    staging, cache = tmp_path / ".r.staging-x", tmp_path / "cache"
    staging.mkdir()
    cache.mkdir()
    (cache / "w.npz").write_bytes(b"npz")
    (staging / "a_worst.npz").write_bytes(b"npz")
    report = {"criteria": [
        {"id": "accuracy.error_rate.om_bs1", "details": {"worst_volume": {"npz": str(cache / "w.npz")}}},
        {"id": "accuracy.error_rate.onnxrt", "details": {"worst_volume": {"npz": "a_worst.npz"}},
         "artifacts": {"worst_volume": {"path": "a_worst.npz"}}},
        {"id": "accuracy.error_rate.gone", "details": {"worst_volume": {"npz": str(cache / "gone.npz")}}}]}
    assert copy_evidence(report, staging) == ["accuracy.error_rate.om_bs1.worst_volume.npz", "a_worst.npz"]
    assert (staging / "accuracy.error_rate.om_bs1.worst_volume.npz").read_bytes() == b"npz"


def test_paths_inside_the_report_folder_are_written_relative_to_it(tmp_path):
    """The report is written with its final paths: a file inside the folder is named relative to the folder,
    so the staging folder's name never reaches the published report (no rewriting afterwards)."""
    from vnet_accept.judge.criterion import Criterion
    from vnet_accept.report.record import build_report

    inside, outside = tmp_path / "report" / "x_worst.npz", tmp_path / "cache" / "y.npz"
    c = Criterion("accuracy.error_rate.onnxrt", "d", details={"worst_volume": {"npz": str(inside)}},
                  artifacts={"worst_volume": {"path": str(inside), "sha256": "ab"},
                             "onnx": {"path": str(outside), "sha256": "cd"}})
    report = build_report([c], {}, {}, report_dir=tmp_path / "report")
    (written,) = report["criteria"]
    assert written["details"]["worst_volume"]["npz"] == "x_worst.npz"
    assert written["artifacts"] == {"worst_volume": {"path": "x_worst.npz", "sha256": "ab"},
                                    "onnx": {"path": str(outside), "sha256": "cd"}}


def test_the_gate_run_lists_only_failures_and_errors_in_pytests_short_summary(tmp_path):
    """Skip reasons are printed once, in the criteria section; an ini's -ra would repeat each (``-rfE`` comes after
    the ini's addopts, and before the user's own arguments, which still win)."""
    from vnet_accept.gate.cmdline import build_pytest_args

    parser = argparse.ArgumentParser()
    add_gate_arguments(parser)
    args = build_pytest_args(parser.parse_args(["--", "-ra"]), tmp_path)
    assert "-rfE" in args and args.index("-rfE") < args.index("-ra")
