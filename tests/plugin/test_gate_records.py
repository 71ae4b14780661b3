"""The gate_record fixture, the criterion marker and the gate report, exercised through inner pytest sessions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from vnet_accept.report.record import REPORT_JSON, SCHEMA, SCHEMA_VERSION

INNER_SUITE = '''
import numpy as np
import pytest

from vnet_accept.judge.criterion import judged


def test_pass(gate_record):
    gate_record.record(judged("demo.pass", "a passing criterion", True, measured=np.float32(0.0625), units="|Δ|",
                              threshold="<= 0.1", basis="bn_mode=running, fp32", reason="within the limit",
                              worst_index=(0, 1, 2)))


def test_fail(gate_record):
    gate_record.record(judged("demo.fail", "a failing criterion", False, measured=6.10496, units="fps",
                              threshold="> 10.31899", reason="slower than the T4"))


@pytest.mark.criterion("demo.skip", "skipped before recording")
def test_skip():
    pytest.skip("no NPU on this host")


@pytest.mark.criterion("demo.error", "dies before measuring")
def test_error(gate_record):
    raise RuntimeError("export crashed")


def test_late_failure(gate_record):
    gate_record.record(judged("demo.late_fail", "measured pass, then the test failed", True, measured=1, reason="ok"))
    assert 1 == 2, "a later check broke"


def test_recorder_skip(gate_record):
    gate_record.skip("demo.recorder_skip", "skipped through the recorder", "needs --npu-results")


def test_artifact(gate_record, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx bytes")
    gate_record.record(judged("demo.artifact", "records an artifact", True, measured=1.0), ("onnx", path))
'''

EXPECTED_VERDICTS = {"demo.pass": "pass", "demo.fail": "fail", "demo.skip": "skip", "demo.error": "error",
                     "demo.late_fail": "fail", "demo.recorder_skip": "skip", "demo.artifact": "pass"}
CRITERION_FIELDS = {"id", "description", "verdict", "measured", "units", "threshold", "basis", "reason", "artifacts",
                    "details", "test", "recorded_at", "message"}


def _report(directory: Path) -> dict:
    return json.loads((directory / REPORT_JSON).read_text())


def _by_id(report: dict) -> dict[str, dict]:
    return {c["id"]: c for c in report["criteria"]}


@pytest.fixture
def inner_run(gate_pytester, run_inner):
    """The inner suite, run once with --gate-report: (pytester, RunResult, report dict)."""
    gate_pytester.makepyfile(test_inner=INNER_SUITE)
    out = gate_pytester.path / "gate-out"
    result = run_inner("--gate-report", str(out), "--strict-markers")
    return gate_pytester, result, _report(out)


def test_outcomes_of_the_inner_suite(inner_run):
    _, result, _ = inner_run
    result.assert_outcomes(passed=2, failed=3, skipped=2)


def test_report_schema_summary_and_one_entry_per_criterion(inner_run):
    _, _, report = inner_run
    assert report["schema"] == SCHEMA and report["schema_version"] == SCHEMA_VERSION
    assert {c["id"]: c["verdict"] for c in report["criteria"]} == EXPECTED_VERDICTS
    assert len(report["criteria"]) == len(EXPECTED_VERDICTS)
    assert [c["id"] for c in report["criteria"]] == sorted(EXPECTED_VERDICTS)
    assert report["summary"] == {"overall": "fail", "criteria": 7,
                                 "counts": {"pass": 2, "fail": 2, "skip": 2, "error": 1}}
    for c in report["criteria"]:
        assert set(c) == CRITERION_FIELDS


def test_a_passing_criterion_keeps_its_numbers_basis_details_and_test(inner_run):
    _, _, report = inner_run
    c = _by_id(report)["demo.pass"]
    assert c["measured"] == 0.0625  # a numpy float32 stays a number in the report
    assert (c["units"], c["threshold"], c["basis"]) == ("|Δ|", "<= 0.1", "bn_mode=running, fp32")
    assert c["description"] == "a passing criterion"
    assert c["reason"] == "within the limit"
    assert c["details"] == {"worst_index": [0, 1, 2]}
    assert c["test"] == "test_inner.py::test_pass"
    assert c["recorded_at"].endswith("Z")


def test_a_failing_criterion_fails_with_its_headline_first_and_no_traceback(inner_run):
    _, result, report = inner_run
    (failed,) = [r for r in result.reprec.getreports("pytest_runtest_logreport")
                 if r.nodeid.endswith("::test_fail") and r.when == "call"]
    assert failed.failed
    text = failed.longreprtext
    assert text.splitlines()[0] == "FAIL  demo.fail: 6.10496 fps (threshold > 10.31899) — slower than the T4"
    assert "Traceback" not in text and "def test_fail" not in text and "assert_passed" not in text
    c = _by_id(report)["demo.fail"]
    assert (c["measured"], c["reason"]) == (6.10496, "slower than the T4")


def test_a_criterion_marked_test_skipped_before_recording_appears_as_a_skip(inner_run):
    _, _, report = inner_run
    c = _by_id(report)["demo.skip"]
    assert c["verdict"] == "skip"
    assert c["reason"] == "no NPU on this host"
    assert c["description"] == "skipped before recording"
    assert c["measured"] is None
    recorder_skip = _by_id(report)["demo.recorder_skip"]
    assert (recorder_skip["verdict"], recorder_skip["reason"]) == ("skip", "needs --npu-results")


def test_a_criterion_not_judged_states_the_threshold_it_would_be_held_to(gate_pytester, run_inner):
    """The marker's ``threshold=`` (a callable of the test's parameters and the gate's options, or a string) and
    ``units=`` fill a skip, whether pytest skipped the test or the recorder did; a measured criterion keeps the
    judgement's own; a threshold naming neither a parameter nor an option is refused at collection."""
    gate_pytester.makepyfile(test_inner="""
        import pytest
        from vnet_accept.judge.criterion import judged

        def limit(batch_size, parity_atol):
            return f"<= {parity_atol:g} at bs{batch_size}"

        @pytest.mark.parametrize("batch_size", [1, 16])
        @pytest.mark.criterion("demo.limit.bs{batch_size}", "d", threshold=limit, units="|Δ|")
        def test_skipped(batch_size):
            pytest.skip("no NPU on this host")

        @pytest.mark.criterion("demo.recorder", "d", threshold="0", units="tiles")
        def test_recorder(gate_record):
            gate_record.skip("demo.recorder", "skipped through the recorder", "needs --npu-results")

        @pytest.mark.criterion("demo.measured", "d", threshold="from the marker", units="x")
        def test_measured(gate_record):
            gate_record.record(judged("demo.measured", "d", True, measured=1, units="y", threshold="judged"))
    """)
    out = gate_pytester.path / "gate-out"
    run_inner("--gate-report", str(out), "--parity-atol", "0.003").assert_outcomes(passed=1, skipped=3)
    got = {c["id"]: (c["verdict"], c["threshold"], c["units"]) for c in _report(out)["criteria"]}
    assert got == {"demo.limit.bs1": ("skip", "<= 0.003 at bs1", "|Δ|"),
                   "demo.limit.bs16": ("skip", "<= 0.003 at bs16", "|Δ|"),
                   "demo.recorder": ("skip", "0", "tiles"), "demo.measured": ("pass", "judged", "y")}

    gate_pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.criterion("demo.bad", "d", threshold=lambda no_such_option: "x")
        def test_bad():
            pass
    """)
    result = run_inner()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*needs {no_such_option}, which is neither a parameter of the test nor a gate option*"])


def test_a_test_that_raises_before_measuring_is_an_error_not_a_pass(inner_run):
    _, _, report = inner_run
    c = _by_id(report)["demo.error"]
    assert c["verdict"] == "error" and c["measured"] is None
    assert "stopped before measuring" in c["reason"] and "export crashed" in c["reason"]


def test_a_measured_pass_followed_by_a_test_failure_becomes_a_fail(inner_run):
    _, _, report = inner_run
    c = _by_id(report)["demo.late_fail"]
    assert c["verdict"] == "fail" and c["measured"] == 1
    assert c["reason"].startswith("ok; test failed afterwards:")
    assert "a later check broke" in c["reason"]


def test_artifacts_are_recorded_with_their_sha256(inner_run):
    pytester, _, report = inner_run
    (artifact,) = _by_id(report)["demo.artifact"]["artifacts"].values()
    assert artifact["path"].endswith("model.onnx")
    assert artifact["sha256"] == hashlib.sha256(b"onnx bytes").hexdigest()


def test_report_provenance_and_settings(inner_run):
    _, _, report = inner_run
    prov = report["provenance"]
    assert {"versions", "machine", "command_line", "time_utc"} <= set(prov)
    assert "--gate-report" in prov["command_line"]
    assert prov["versions"]["pytest"] == pytest.__version__
    assert prov["time_utc"].endswith("Z")
    assert {"system", "machine", "cpu_count"} <= set(prov["machine"])
    settings = report["settings"]
    assert settings["bn_mode"] == "running"
    assert settings["parity_atol"] == 1e-4 and settings["parity_max_flip_fraction"] == 1e-5
    assert (settings["reference_error"], settings["tolerance_pp"]) == (0.355, 1.0)
    assert settings["vnet_weights"] is None


def test_terminal_summary_is_one_line_per_family_each_skip_reason_once(inner_run):
    """Without -v: one line per family, each failure's headline under it, each distinct skip reason once with the
    criteria it covers, and the verdict on the port (never a bare PASS: these are stand-in weights)."""
    _, result, _ = inner_run
    result.stdout.fnmatch_lines([
        "*= vnet-accept gate criteria =*",
        "FAIL  demo: 2 passed, 2 failed, 1 errored, 2 not judged [1, 2]",
        "      ERROR demo.error: not measured — the test stopped before measuring: *export crashed*",
        "      FAIL  demo.fail: 6.10496 fps (threshold > 10.31899) — slower than the T4",
        "      FAIL  demo.late_fail: 1 — ok; test failed afterwards: *",
        "not judged, each reason once (every criterion's line: pytest -v, or gate-report.md):",
        "  [1] needs --npu-results (1 criterion: demo.recorder_skip)",
        "  [2] no NPU on this host (1 criterion: demo.skip)",
        "gate: FAIL — 2 of 7 criteria passed, 2 failed, 1 errored, 2 not judged",
        "gate report: *gate-out*gate-report.json",
    ])
    result.stdout.no_fnmatch_line("PASS  demo.pass*")


def test_terminal_summary_lists_every_criterion_with_v(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_inner=INNER_SUITE)
    result = run_inner("--gate-report", str(gate_pytester.path / "gate-out"), "-v")
    result.stdout.fnmatch_lines([
        "*= vnet-accept gate criteria =*",
        "PASS  demo.artifact: 1",
        "ERROR demo.error: not measured — the test stopped before measuring: *export crashed*",
        "FAIL  demo.fail: 6.10496 fps (threshold > 10.31899) — slower than the T4",
        "FAIL  demo.late_fail: 1 — ok; test failed afterwards: *",
        "PASS  demo.pass: 0.0625 |Δ| (threshold <= 0.1) — within the limit",
        "SKIP  demo.recorder_skip: not measured — needs --npu-results",
        "SKIP  demo.skip: not measured — no NPU on this host",
        "gate: FAIL — 2 of 7 criteria passed, 2 failed, 1 errored, 2 not judged",
        "gate report: *gate-out*gate-report.json",
    ])


def test_without_gate_report_nothing_is_written_but_the_summary_is_shown(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_inner="""
        from vnet_accept.judge.criterion import judged

        def test_one(gate_record):
            gate_record.record(judged("demo.one", "one", True, measured=2))
    """)
    result = run_inner()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*vnet-accept gate criteria*", "PASS  demo: 1 passed",
                                 "gate: NOT READY TO FILE — 1 of 1 criterion passed, none failed, 0 not judged; the "
                                 "port was not gated: the checkpoint is a seeded stand-in*"])
    result.stdout.no_fnmatch_line("gate report:*")
    assert list(gate_pytester.path.rglob(REPORT_JSON)) == []


def test_a_session_without_criteria_prints_no_gate_section_but_still_writes_a_report(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_inner="def test_plain():\n    pass\n")
    result = run_inner("--gate-report", "out")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*vnet-accept gate criteria*")
    report = _report(gate_pytester.path / "out")
    assert report["criteria"] == [] and report["summary"]["overall"] == "no verdict"


def test_marked_tests_that_crash_in_setup_or_call_before_recording_are_errors(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_inner="""
        import pytest

        from vnet_accept.judge.criterion import judged

        @pytest.fixture
        def onnx_file():
            raise RuntimeError("export failed in the fixture")

        @pytest.mark.criterion("demo.setup_crash", "fixture dies")
        def test_setup_crash(onnx_file):
            pass

        @pytest.mark.criterion("demo.call_crash", "body dies before recording")
        def test_call_crash():
            raise RuntimeError("boom")

        def test_ok(gate_record):
            gate_record.record(judged("demo.ok", "fine", True, measured=1))
    """)
    run_inner("--gate-report", "out")
    report = _report(gate_pytester.path / "out")
    got = _by_id(report)
    assert {k: c["verdict"] for k, c in got.items()} == {"demo.setup_crash": "error", "demo.call_crash": "error",
                                                         "demo.ok": "pass"}
    assert "export failed in the fixture" in got["demo.setup_crash"]["reason"]
    assert report["summary"]["overall"] == "fail"


def test_marker_criteria_of_skipped_setup_and_parametrized_tests(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.criterion("perf.fps", description="card fps beats the T4")
        @pytest.mark.parametrize("bs", [1, 16])
        @pytest.mark.skipif(True, reason="no ais_bench results")
        def test_fps(bs):
            pass
    """)
    run_inner("--gate-report", "out")
    got = _by_id(_report(gate_pytester.path / "out"))
    assert set(got) == {"perf.fps[1]", "perf.fps[16]"}
    assert all(c["verdict"] == "skip" and c["reason"] == "no ais_bench results" for c in got.values())
    assert got["perf.fps[16]"]["description"] == "card fps beats the T4"
    assert got["perf.fps[16]"]["test"] == "test_inner.py::test_fps[16]"


def test_a_criterion_recorded_twice_keeps_the_last_record(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_inner="""
        from vnet_accept.judge.criterion import judged

        def test_first(gate_record):
            gate_record.record(judged("demo.same", "first", True, measured=1))

        def test_second(gate_record):
            gate_record.record(judged("demo.same", "second", False, measured=2))
    """)
    run_inner("--gate-report", "out")
    report = _report(gate_pytester.path / "out")
    assert [(c["id"], c["measured"], c["verdict"]) for c in report["criteria"]] == [("demo.same", 2, "fail")]


@pytest.mark.parametrize("marker", ["@pytest.mark.criterion()", "@pytest.mark.criterion(description='no id')"])
def test_criterion_marker_without_an_id_is_a_usage_error(gate_pytester, marker, run_inner):
    gate_pytester.makepyfile(test_inner=f"""
        import pytest

        {marker}
        def test_x():
            pass
    """)
    result = run_inner()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_inner.py::test_x: @pytest.mark.criterion needs an id*"])


def test_the_criterion_marker_is_registered_with_its_signature(run_inner):
    result = run_inner("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.criterion(id, description, threshold=None, units=None): *Example: *"])


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_under_xdist_the_controller_writes_every_criterion_exactly_once(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_inner=INNER_SUITE)
    # One more file, so both workers get work under --dist load.
    gate_pytester.makepyfile(test_more="""
        import pytest

        from vnet_accept.judge.criterion import judged

        @pytest.mark.parametrize("i", range(4))
        def test_many(gate_record, i):
            gate_record.record(judged(f"demo.many[{i}]", "spread over workers", True, measured=i))
    """)
    out = gate_pytester.path / "gate-out"
    result = run_inner("-p", "xdist", "-n", "2", "--gate-report", str(out))
    result.assert_outcomes(passed=6, failed=3, skipped=2)
    report = _report(out)
    ids = [c["id"] for c in report["criteria"]]
    expected = {**EXPECTED_VERDICTS, **{f"demo.many[{i}]": "pass" for i in range(4)}}
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    assert {c["id"]: c["verdict"] for c in report["criteria"]} == expected
    assert _by_id(report)["demo.pass"]["measured"] == 0.0625
    assert report["summary"]["counts"] == {"pass": 6, "fail": 2, "skip": 2, "error": 1}
    assert list(out.iterdir()) == [out / REPORT_JSON]  # no worker files, no temp leftovers


MISSHAPEN = '''
from vnet_accept.judge.criterion import judged


def test_per_volume_as_a_mapping(gate_record):
    gate_record.record(judged("accuracy.error_rate.selftest_model", "per_volume in the wrong shape", True,
                              measured=0.42, units="%", subject="selftest", per_volume={"1.2.3": 0.42}))


def test_without_subject(gate_record):
    gate_record.record(judged("accuracy.error_rate.onnxrt", "whose model?", True, measured=0.42, units="%",
                              per_volume=[{"uid": "1.2.3", "incorrect": 1, "total": 10, "error_rate_pct": 10.0}]))


def test_throughput_as_text(gate_record):
    gate_record.record(judged("perf.throughput.bs1", "fps as text", True, measured=24.4, card_fps="24.4 fps"))
'''


def test_details_the_report_cannot_read_fail_the_test_that_records_them(gate_pytester, run_inner):
    """Issue 14: a criterion recording ``per_volume`` as a mapping broke the report at the very end of the gate;
    the contract is checked when the criterion is recorded, so the check that breaks it is the one that errors."""
    gate_pytester.makepyfile(test_misshapen=MISSHAPEN)
    out = gate_pytester.path / "gate-out"
    result = run_inner("--gate-report", str(out))
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*accuracy.error_rate.selftest_model: details.per_volume is a dict; the contract is "
                                 "a list of*", "*details.subject is None*", "*details.card_fps is '24.4 fps'*"])
    verdicts = {c["id"]: (c["verdict"], c["reason"]) for c in _report(out)["criteria"]}
    assert all(v == "error" and r.startswith("the check recorded details the report cannot read")
               for v, r in verdicts.values()), verdicts


TEMPLATE_SUITE = '''
import pytest


def _size(bn_mode):
    return {"running": "16x16x16", "batch": "16x16x32"}[bn_mode]


@pytest.mark.parametrize("batch_size", [1, 16], ids=["bs1", "bs16"])
@pytest.mark.criterion("om.atc.bs{batch_size}", "from a parameter")
def test_param(batch_size):
    pytest.skip("no NPU")


@pytest.mark.criterion("finite.torch-cuda.{bn_mode}", "from a gate option")
def test_option():
    pytest.skip("no GPU")


@pytest.mark.parametrize("bn_mode", ["running", "batch"])
@pytest.mark.criterion(lambda bn_mode: f"parity.x.{bn_mode}.bs16_{_size(bn_mode)}", "a callable")
def test_callable(bn_mode):
    pytest.skip("not here")


@pytest.mark.parametrize("n", [3])
@pytest.mark.criterion("plain.id", "no field: the parameter id is appended")
def test_plain(n):
    pytest.skip("not here")
'''


def test_a_skipped_criterion_keeps_the_id_a_measured_one_has(gate_pytester, run_inner):
    """The marker's id is a template filled from the parameters (then the gate's options), so ``om.atc.bs16``
    skipped on a machine without an NPU is ``om.atc.bs16`` in the report, not ``om.atc[bs16]``."""
    gate_pytester.makepyfile(test_inner=TEMPLATE_SUITE)
    out = gate_pytester.path / "gate-out"
    run_inner("--gate-report", str(out), "--bn-mode", "batch").assert_outcomes(skipped=6)
    assert sorted(_by_id(_report(out))) == ["finite.torch-cuda.batch", "om.atc.bs1", "om.atc.bs16",
                                             "parity.x.batch.bs16_16x16x32", "parity.x.running.bs16_16x16x16",
                                             "plain.id[3]"]


def test_a_template_naming_an_unknown_field_fails_at_collection(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_inner='''
import pytest

@pytest.mark.criterion("om.atc.bs{batchsize}", "typo")
def test_x():
    pass
''')
    result = run_inner()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_x: the criterion id template needs {batchsize}, which is neither a parameter*"])


SHARED_RUNS_SUITE = '''
import os

import pytest


@pytest.fixture(scope="session")
def reduced_runs():
    return os.getpid()  # computed in memory: once per worker that uses it


def _note(request, kind, pid):
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    (request.config.rootpath / f"{kind}-{request.node.name}.txt").write_text(f"{pid} {cpus}")


@pytest.mark.parametrize("i", range(6))
def test_uses_the_runs(reduced_runs, request, i):
    _note(request, "runs", reduced_runs)


@pytest.mark.parametrize("i", range(6))
def test_independent(request, i):
    _note(request, "free", os.getpid())
'''


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_getaffinity"), reason="needs CPU affinity (Linux)")
def test_under_loadgroup_tests_sharing_in_memory_runs_share_one_worker_and_workers_share_the_cpus(gate_pytester,
                                                                                                  run_inner):
    import os

    gate_pytester.makepyfile(test_shared=SHARED_RUNS_SUITE)
    result = run_inner("-p", "xdist", "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=12)
    notes = {p.name: p.read_text().split() for p in gate_pytester.path.glob("*-test_*.txt")}
    assert len(notes) == 12
    runs = {pid for name, (pid, _) in notes.items() if name.startswith("runs-")}
    assert len(runs) == 1, f"reduced_runs computed in {len(runs)} workers: {notes}"
    cpus_by_pid = {pid: cpus for pid, cpus in notes.values()}
    if len(os.sched_getaffinity(0)) >= 2 and len(cpus_by_pid) == 2:  # both workers got work: disjoint CPU shares
        a, b = (set(c.split(",")) for c in cpus_by_pid.values())
        assert not a & b, f"workers share CPUs: {cpus_by_pid}"


SHARED_REASON_SUITE = '''
import pytest

NPU = "no NPU here: pass --npu-results DIR"


def test_first(gate_record):
    gate_record.skip("demo.first", "one criterion", NPU)


def test_second(gate_record):
    gate_record.skip("demo.second", "another criterion, another line", NPU)


def test_plain():
    pytest.skip("needs ../shared: pass --shared-dir")
'''


PLAIN_SKIP = '    pytest.skip("needs ../shared: pass --shared-dir")'


@pytest.mark.parametrize("workers", [(), ("-p", "xdist", "-n", "2")], ids=["in-process", "xdist"])
def test_a_reason_shared_by_criteria_is_printed_once_and_other_skips_stay_in_the_short_summary(gate_pytester,
                                                                                               run_inner, workers):
    gate_pytester.makepyfile(test_inner=SHARED_REASON_SUITE)
    result = run_inner("-rs", *workers)
    text = result.stdout.str()
    assert text.count("no NPU here: pass --npu-results DIR") == 1, text  # the criteria section's line only
    assert "[1] no NPU here: pass --npu-results DIR (2 criteria: demo.first, demo.second)" in text
    assert [line for line in text.splitlines() if line.startswith("SKIPPED")] == [
        f"SKIPPED [1] test_inner.py:{SHARED_REASON_SUITE.strip().splitlines().index(PLAIN_SKIP) + 1}: needs ../shared: "
        "pass --shared-dir"]
    result.assert_outcomes(skipped=3)  # the counts line still counts every skip


def test_the_terminal_numbers_skip_reasons_as_the_report_does():
    """Sorted by id, the CUDA skip comes first; the report lists the NPU group first, and so must the terminal."""
    from vnet_accept.judge.criterion import judged as make
    from vnet_accept.plugin.records import family_lines
    from vnet_accept.report.notjudged import not_judged, reason_numbers

    cuda, npu = "CUDA not available: run on a host with an NVIDIA GPU", "atc not on PATH: pass --npu-results DIR"
    criteria = [make("a.gpu_check", "d", None, reason=cuda), make("b.om_check", "d", None, reason=npu),
                make("c.passes", "d", True)]
    numbers = reason_numbers(not_judged([c.to_dict() for c in criteria], {}))
    assert numbers == {npu: 1, cuda: 2}
    assert family_lines(criteria, {}) == [
        "SKIP  a: 1 not judged [2]", "SKIP  b: 1 not judged [1]", "PASS  c: 1 passed",
        "not judged, each reason once (every criterion's line: pytest -v, or gate-report.md):",
        f"  [1] {npu} (1 criterion: b.om_check)", f"  [2] {cuda} (1 criterion: a.gpu_check)"]
