"""``vnet-accept gate`` (run every criterion and write the report) and ``vnet-accept report`` (render a saved one).

Parsers only; the work is in :mod:`vnet_accept.gate` and :mod:`vnet_accept.report.publish`.
"""

from __future__ import annotations

import argparse
from typing import Any

GATE_EPILOG = """\
examples:
  vnet-accept gate                                      # synthetic data, seeded weights: what can be judged here
  vnet-accept gate --weights vnet_model_best.pth.tar --luna16 /data/luna16 \\
                   --test-uids reference/test_uids.txt -o report/
  vnet-accept gate --npu-results results/ --soc-version Ascend310 -- -k "npu or accuracy"

exit status: 0 every applicable criterion passed, 1 a criterion failed, 2 usage or environment error
(bad input, nothing judged, no tests, interrupted). The report folder holds gate-report.json, gate-report.md,
modelzoo_level.txt, PNGs and junit.xml; a run that does not finish never replaces a complete report."""


def register(subparsers: Any) -> None:
    from vnet_accept.gate.cmdline import add_gate_arguments

    gate = subparsers.add_parser(
        "gate", help="run every criterion and write the gate report (JSON, Markdown, modelzoo_level.txt, PNGs, JUnit)",
        description="Run the whole acceptance gate (pytest underneath: same fixtures, options and markers) and "
                    "write the report a contributor files with the model-zoo submission.",
        epilog=GATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    add_gate_arguments(gate)
    gate.set_defaults(func=_gate)
    report = subparsers.add_parser(
        "report", help="render gate-report.md, modelzoo_level.txt and the PNGs again from a saved gate-report.json",
        description="Re-render a report folder from its gate-report.json (in place, atomically, or into -o DIR).")
    report.add_argument("report_dir", metavar="REPORT_DIR", help="folder holding gate-report.json (or the file)")
    report.add_argument("-o", "--output", metavar="DIR", help="write the rendered report here instead (default: "
                                                              "in place)")
    report.set_defaults(func=_report)


def _gate(args: argparse.Namespace) -> int:
    from vnet_accept.gate.cmdline import gate_option_args
    from vnet_accept.gate.run import run_gate

    # The command line as the gate understood it (sys.argv is someone else's when called in-process).
    argv = [*(["-o", args.output] if args.output else []), *gate_option_args(args),
            *(["--", *args.pytest_args] if args.pytest_args else [])]
    return run_gate(args, argv)


def _report(args: argparse.Namespace) -> int:
    from vnet_accept.gate.outcome import Outcome
    from vnet_accept.gate.terminal import verdict_block
    from vnet_accept.report.publish import rerender
    from vnet_accept.report.record import load_report

    where = rerender(args.report_dir, args.output)
    report = load_report(where)
    gate = report.get("gate") or {}
    overall = report["summary"]["overall"]  # schema 2: the verdict on the port; 1: "pass" when nothing failed
    outcome = Outcome(int(gate.get("exit_code", 0 if overall in ("ready", "not gated", "pass") else 1)),
                      report.get("complete") is not False, gate.get("explanation") or
                      f"rendered from {where / 'gate-report.json'} (overall {overall})")
    for line in verdict_block(report, outcome, where):
        print(line)
    return 0
