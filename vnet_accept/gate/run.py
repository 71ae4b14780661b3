"""One gate run: a staging folder beside the report folder, ``pytest.main`` in this process over the installed
criteria, the exit status decided, the report rendered from its JSON and swapped into place
(:mod:`vnet_accept.report.publish`). A run that does not finish never replaces a complete report."""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from vnet_accept.errors import UsageError
from vnet_accept.gate import cmdline
from vnet_accept.gate.cmdline import DEFAULT_REPORT_DIR, build_pytest_args, check_command_line
from vnet_accept.gate.finalise import copy_evidence, finalise_report
from vnet_accept.gate.outcome import decide
from vnet_accept.gate.session import GateSession
from vnet_accept.gate.terminal import verdict_block


def run_gate(ns: argparse.Namespace, argv: Sequence[str] | None = None,
             suite: Sequence[str] | None = None, out: Any = None) -> int:
    """Run the gate for parsed arguments ``ns``; ``suite`` replaces the criteria (tests use a tiny suite)."""
    from vnet_accept.report.publish import Staging, remove_stale_staging, render_report
    from vnet_accept.report.record import REPORT_JSON, load_report

    out = out or sys.stdout
    suite = cmdline.DEFAULT_SUITE if suite is None else suite  # read at call time: tests point it elsewhere
    argv = list(argv if argv is not None else sys.argv[2:])
    check_command_line(ns)
    target = Path(ns.output or DEFAULT_REPORT_DIR).expanduser().absolute()
    remove_stale_staging(target)
    staging = Staging(target)
    session = GateSession()
    pytest_args = build_pytest_args(ns, staging.path, suite)
    print(f"vnet-accept gate: pytest {' '.join(_quote(a) for a in pytest_args)}", file=out, flush=True)
    try:
        code = pytest.main(pytest_args, plugins=[session])
    except BaseException:
        staging.mark_incomplete("the gate itself was interrupted or crashed")
        raise
    with contextlib.suppress(OSError):  # pytest-benchmark's storage, empty: the gate runs no benchmark
        (staging.path / cmdline.BENCHMARK_STORAGE).rmdir()
    json_path = staging.path / REPORT_JSON
    report = None
    if json_path.is_file():
        try:
            report = load_report(json_path)
        except (OSError, ValueError):
            report = None
    counts = (report.get("summary") or {}).get("counts") if report else None
    gated = True
    if report is not None:
        from vnet_accept.report.readiness import readiness

        gated = readiness(report.get("criteria", []), {**session.settings, **report.get("settings", {})}).gated
    outcome = decide(int(code), counts, usage_error=session.usage_error,
                     collection_errors=session.collection_errors, interrupted=session.interrupted,
                     stopped_early=session.stopped_early, failed_tests=session.failed_tests, gated=gated)
    if session.usage_error:
        staging.discard()
        raise UsageError(session.usage_error)
    if report is None or not outcome.has_report:
        staging.discard()
        for line in verdict_block(None, outcome, None):
            print(line, file=out)
        return outcome.exit_code
    finalise_report(report, outcome, session, argv, pytest_args, int(code), target, staging.path)
    copy_evidence(report, staging.path)
    try:
        render_report(report, staging.path)  # a figure or the Markdown failing is named inside, not raised
    except Exception as exc:  # the folder itself could not be written: keep the evidence, marked, and say where
        (staging.path / "render-error.txt").write_text(traceback.format_exc())
        where = staging.keep_incomplete(f"writing the report failed ({type(exc).__name__}: {exc})")
        print(f"vnet-accept gate: writing the report failed ({type(exc).__name__}: {exc}); the previous report "
              f"at {target} is untouched, this run's is at {where} (traceback in render-error.txt)", file=sys.stderr)
        for line in verdict_block(report, outcome, None):
            print(line, file=out)
        return outcome.exit_code if outcome.exit_code == 1 else 2  # a failure stays a failure
    where = staging.publish() if outcome.complete else staging.keep_incomplete(outcome.explanation)
    for line in verdict_block(report, outcome, where):
        print(line, file=out)
    for problem in report.get("render_errors") or []:
        print(f"vnet-accept gate: {problem['file']} could not be rendered ({problem['error']}); the verdicts are "
              "unaffected (named in the report)", file=sys.stderr)
    if not outcome.complete:
        previous = f"the previous report at {target} is untouched" if target.exists() else f"no report at {target}"
        print(f"vnet-accept gate: the run did not finish; its partial report is at {where} (marked INCOMPLETE); "
              f"{previous}", file=out)
    return outcome.exit_code


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)

