"""The gate's exit status, decided from pytest's and the criteria's verdicts (the one exit-code policy: 0 nothing
judged failed - "ready to file" only when the port was gated, else "not ready to file" -, 1 a verdict failed, 2 bad
input, usage or environment)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    exit_code: int  # the gate's: 0 pass, 1 fail, 2 usage/environment
    complete: bool  # the run finished: its report may replace the previous one
    explanation: str
    has_report: bool = True  # a gate-report.json exists to render


def decide(pytest_code: int, counts: Mapping[str, int] | None, *, usage_error: str | None = None,
           collection_errors: Sequence[Mapping[str, str]] = (), interrupted: str | None = None,
           stopped_early: str | None = None, failed_tests: Sequence[Mapping[str, Any]] = (),
           gated: bool = True) -> Outcome:
    """The gate's exit status from pytest's and the criteria's verdict counts (None: no JSON was written).

    pytest 0 → 0, 1 → 1, 2/3/4/5 → 2 (interrupted or collection errors / internal error / usage error / no tests);
    a failed or errored criterion → 1 whatever pytest says; no criterion judged (all skipped) → 2. A run that
    passed what it judged but did not gate the port (``gated=False``: stand-in weights or a required criterion not
    judged, :mod:`vnet_accept.report.readiness`) exits 0 and says "not ready to file"."""
    code = int(pytest_code)
    if usage_error:
        return Outcome(2, False, usage_error, has_report=False)
    if code == 4:
        return Outcome(2, False, "pytest rejected the command line or the ini file (its message is above)", False)
    if code == 5:
        return Outcome(2, False, "no tests were collected: the criteria were not found or everything was deselected "
                                 "(check -k/-m after --)", has_report=False)
    if code == 3:
        return Outcome(2, False, "pytest stopped with an internal error (traceback above)", counts is not None)
    if code == 2 or code not in (0, 1):
        if collection_errors:
            first = collection_errors[0]
            why = (f"{len(collection_errors)} error(s) while collecting the criteria, first {first['nodeid']}: "
                   f"{first['reason']}")
        else:
            why = f"the run was interrupted ({interrupted or f'pytest exit status {code}'})"
        return Outcome(2, False, why, counts is not None)
    if counts is None:
        return Outcome(2, False, "pytest ran but wrote no gate-report.json: the vnet-accept plugin did not run "
                                 "(-p no:… or PYTEST_DISABLE_PLUGIN_AUTOLOAD without -p vnet_accept.plugin?)", False)
    bad = counts.get("fail", 0) + counts.get("error", 0)
    loose = [t for t in failed_tests if not t.get("criterion")]
    if stopped_early:
        return Outcome(1 if (code == 1 or bad) else 2, False,
                       f"the session stopped early ({stopped_early}); the criteria after that point did not run")
    if code == 1 or bad:
        parts = []
        if bad:
            parts.append(f"{bad} criteri{'a' if bad != 1 else 'on'} failed")
        if loose:
            parts.append(f"{len(loose)} test(s) failed without recording a criterion, first {loose[0]['nodeid']}: "
                         f"{loose[0]['reason']}")
        return Outcome(1, True, "; ".join(parts) or "a test failed")
    if not counts.get("pass", 0):
        return Outcome(2, True, "nothing was judged: every criterion was skipped (see \"not judged\")")
    skipped = counts.get("skip", 0)
    if not gated:
        return Outcome(0, True, "every criterion judged here passed, but the port was not gated: not ready to file"
                       + (f" ({skipped} not judged, see \"not judged\")" if skipped else ""))
    return Outcome(0, True, "every applicable criterion passed; the port is ready to file"
                   + (f" ({skipped} not judged, see \"not judged\")" if skipped else ""))



