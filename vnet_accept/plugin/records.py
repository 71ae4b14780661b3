"""Collecting gate criteria from tests and writing the gate report at session end.

Tests record through the ``gate_record`` fixture. Records travel to the controller in
``report.user_properties`` (so pytest-xdist workers work unchanged) and are written once, by the controller,
at ``pytest_sessionfinish`` when ``--gate-report DIR`` is given. A test marked ``criterion(id, description)``
that is skipped before it records anything still appears in the report, as a skip with the skip's reason.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from vnet_accept.io_utils import sha256_file
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.report.record import build_report, detail_problems, provenance, write_report

PROPERTY = "vnet_accept_criterion"
records_key = pytest.StashKey[list]()  # per item: Criterion objects not yet shipped
recorded_key = pytest.StashKey[bool]()  # per item: something was shipped already
session_key = pytest.StashKey[list]()  # on the controller: every Criterion of the session
report_path_key = pytest.StashKey[Path]()
#: Set by a caller that publishes the report itself afterwards (``vnet-accept gate`` writes into a staging folder
#: and names the final one in its verdict block): the criteria section does not print the staging path.
published_by_caller_key = pytest.StashKey[bool]()


class GateRecorder:
    """The ``gate_record`` fixture's value: records what the judgements return, bound to the running test."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item

    def record(self, criterion: Criterion, *artifacts: tuple[str, str | Path]) -> Criterion:
        """Record what a judgement (:mod:`vnet_accept.judge`) returned, with ``(name, path)`` artifacts hashed here,
        and end the test the same way: a skip keeps its reason, a failure shows the judgement's message (its first
        line is pytest's short summary), no traceback. Details the report cannot read fail here, in the test that
        records them, not later in the report."""
        __tracebackhide__ = True
        for name, path in artifacts:
            path = Path(path)
            criterion.artifacts[name] = {"path": str(path), "sha256": sha256_file(path) if path.is_file() else ""}
        criterion.test = self.item.nodeid
        if criterion.verdict == "skip" and not criterion.threshold:
            marker = self.item.get_closest_marker("criterion")
            if marker is not None and criterion.id == criterion_id(self.item, marker):
                criterion.threshold = marker_threshold(self.item, marker)
                criterion.units = criterion.units or marker.kwargs.get("units", "")
        criterion.recorded_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.item.stash.setdefault(records_key, []).append(criterion)
        problems = detail_problems(criterion.id, criterion.details)
        if problems:
            criterion.verdict = "error"
            criterion.reason = f"the check recorded details the report cannot read: {problems[0]}"
            raise TypeError(f"{criterion.id}: {'; '.join(problems)}")
        if criterion.verdict == "skip":
            pytest.skip(criterion.reason)
        if criterion.verdict != "pass":
            pytest.fail(criterion.explanation(), pytrace=False)
        return criterion

    def skip(self, cid: str, description: str, reason: str) -> None:
        """Record ``cid`` as not judged, with ``reason`` (what is missing and how to provide it), and the threshold
        it would be held to (the marker's ``threshold``), and skip."""
        __tracebackhide__ = True
        self.record(judged(cid, description, None, reason=reason))


@pytest.fixture
def gate_record(request: pytest.FixtureRequest) -> GateRecorder:
    """Record gate criteria: ``gate_record.record(judgement(...), ("onnx", path))`` with a judgement of
    :mod:`vnet_accept.judge`; ``gate_record.skip(id, description, reason)`` when it cannot be judged here."""
    return GateRecorder(request.node)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    pending: list[Criterion] = item.stash.get(records_key, [])
    if call.when == "call" or (report.skipped or report.failed):
        # A marked test that is skipped, or dies in setup or call, before recording still gets its criterion:
        # a crash must show as an error in the report, never as a missing (and so silently passing) criterion.
        # A marked test that passes without recording is an error too: its verdict would otherwise be lost.
        unrecorded_pass = call.when == "call" and report.passed and not item.stash.get(recorded_key, False)
        if not pending and (report.skipped or (report.failed and call.when != "teardown") or unrecorded_pass):
            marker = item.get_closest_marker("criterion")
            if marker is not None:
                c = _criterion_from_marker(item, marker)
                if unrecorded_pass:
                    c.reason = "the test passed without recording its criterion (a bug in the check)"
                pending.append(c)
        reason = _outcome_reason(report)
        if pending:
            item.stash[recorded_key] = True
        for c in pending:
            if report.skipped:  # skipped after measuring (or before): the verdict is not a real one
                c.verdict, c.reason = "skip", c.reason if c.verdict == "skip" else (reason or c.reason)
            elif c.verdict == "error":
                c.reason = c.reason or f"the test stopped before measuring: {reason}"
            elif c.verdict == "pass" and report.failed:
                # The criterion measured fine but the test failed on a later assertion: not a pass.
                c.verdict, c.reason = "fail", f"{c.reason}; test failed afterwards: {reason}".strip("; ")
            report.user_properties.append((PROPERTY, json.dumps(c.to_dict(), default=_jsonable)))
        item.stash[records_key] = []


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outside the terminal reporter's wrapper, which prints the summary
def pytest_terminal_summary(terminalreporter: Any) -> Any:
    """Leave the skipped criteria out of pytest's short test summary (``-ra``/``-rs``) while it prints: it folds
    skips by test line, so one reason shared by 33 NPU criteria came out nine times. The "vnet-accept gate criteria"
    section gives each reason once, with the criteria it covers; other skips stay listed, and the counts line (printed
    after this) still counts every skip."""
    stats = terminalreporter.stats
    skipped = stats.get("skipped", [])
    others = [r for r in skipped if not any(name == PROPERTY for name, _ in getattr(r, "user_properties", ()))]
    if len(others) != len(skipped):
        stats["skipped"] = others
    try:
        return (yield)
    finally:
        if len(others) != len(skipped):
            stats["skipped"] = skipped


def _jsonable(obj: Any) -> Any:
    """numpy scalars and arrays stay numbers (``default=str`` made ``np.float32(0.5)`` the string "0.5")."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _criterion_from_marker(item: pytest.Item, marker: pytest.Mark) -> Criterion:
    description = marker.args[1] if len(marker.args) > 1 else marker.kwargs.get("description", "")
    return Criterion(id=criterion_id(item, marker), description=description, test=item.nodeid,
                     threshold=marker_threshold(item, marker), units=marker.kwargs.get("units", ""))


def marker_threshold(item: pytest.Item, marker: pytest.Mark) -> str:
    """The threshold a criterion would be held to, for one that stops before it measures (not judged here): the
    marker's ``threshold=``, a string or a callable of parameters and gate options, as the id template takes them -
    the same function the judgement uses, so the report states the limit a missing measurement will have to meet
    (in the marker's ``units=``, as the judgement's). ``""`` without one."""
    threshold = marker.kwargs.get("threshold", "")
    if not callable(threshold):
        return str(threshold)
    return str(threshold(**{name: _field_value(item, name) for name in template_fields(threshold)}))


def criterion_id(item: pytest.Item, marker: pytest.Mark | None = None) -> str:
    """The id a marked test records when it stops before recording (a skip, a crash), spelled as the measured
    one is, so a criterion keeps its id between a machine that measures it and one that cannot.

    The marker's id is a template: ``{name}`` fields are filled from the test's parameters, then from the gate's
    options of that name (``"om.atc.bs{batch_size}"``, ``"finite.torch-cuda-{dtype}.{bn_mode}"``); a callable
    is called with those names as keyword arguments. A parametrised test whose id has no field gets
    ``[<parameter id>]`` appended, so its criteria stay distinct."""
    marker = marker or item.get_closest_marker("criterion")
    template = marker.args[0] if marker.args else marker.kwargs.get("id", item.name)
    callspec = getattr(item, "callspec", None)
    names = template_fields(template)
    if not names:
        return f"{template}[{callspec.id}]" if callspec is not None else str(template)
    values = {name: _field_value(item, name) for name in names}
    return template(**values) if callable(template) else template.format_map(values)


def template_fields(template: Any) -> list[str]:
    """The names a criterion id template needs: its ``{fields}``, or a callable's parameters."""
    if callable(template):
        import inspect

        return list(inspect.signature(template).parameters)
    import string

    return [field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(str(template))
            if field]


def _field_value(item: pytest.Item, name: str) -> Any:
    """A template field's value: the test's parameter of that name, else the gate's option (``bn_mode``)."""
    from vnet_accept.options import OPTIONS_BY_DEST
    from vnet_accept.plugin.options import get_option

    params = getattr(getattr(item, "callspec", None), "params", {})
    if name in params:
        return params[name]
    if name in OPTIONS_BY_DEST:
        return get_option(item.config, name)
    raise pytest.UsageError(f"{item.nodeid}: the criterion id template needs {{{name}}}, which is neither a parameter "
                            "of the test nor a gate option")


def _outcome_reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        text = getattr(report, "longreprtext", "") or str(report.longrepr)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("E ")]
        first = lines[0][1:].strip() if lines else (text.strip().splitlines() or [""])[-1]
        return first[:300]
    return ""


class GateReportPlugin:
    """Registered per session in ``pytest_configure``: gathers criteria and writes the report (controller only)."""

    def __init__(self, config: pytest.Config, report_dir: Path | None, settings: dict[str, Any]) -> None:
        self.config, self.report_dir, self.settings = config, report_dir, settings
        self.criteria: list[Criterion] = []
        self.report_path: Path | None = None
        config.stash[session_key] = self.criteria

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY:
                self.criteria.append(Criterion.from_dict(json.loads(value)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.report_dir is None or hasattr(self.config, "workerinput"):
            return  # xdist workers never write shared files; the controller does
        report = build_report(collected_criteria(self.config),
                              provenance(command_line=list(self.config.invocation_params.args)), self.settings,
                              report_dir=self.report_dir)
        self.report_path = write_report(self.report_dir, report)
        self.config.stash[report_path_key] = self.report_path

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        gate_run = self.config.stash.get(published_by_caller_key, False)  # its verdict block says the verdict
        lines = terminal_lines(self.config, self.settings, verdict_line=not gate_run)
        if not lines:
            return
        terminalreporter.section("vnet-accept gate criteria")
        for line in lines:
            terminalreporter.write_line(line)
        if self.report_path is not None and not gate_run:
            terminalreporter.write_line(f"gate report: {self.report_path}")


def collected_criteria(config: pytest.Config) -> list[Criterion]:
    """Criteria recorded so far, de-duplicated by id (the last record of an id wins, e.g. after a rerun)."""
    by_id: dict[str, Criterion] = {}
    for c in config.stash.get(session_key, []):
        by_id[c.id] = c
    return list(by_id.values())


def terminal_lines(config: pytest.Config, settings: dict[str, Any] | None = None,
                   verdict_line: bool = True) -> list[str]:
    """The "vnet-accept gate criteria" section: one line per family (every criterion with ``-v``), each failure's
    headline, each skip reason once with the criteria it covers, and the verdict on the port (not in a gate run,
    whose verdict block follows)."""
    from vnet_accept.report.readiness import readiness

    criteria = sorted(collected_criteria(config), key=lambda c: c.id)
    if not criteria:
        return []
    dicts = [c.to_dict() for c in criteria]
    if _verbosity(config) >= 1:
        lines = [c.headline() for c in criteria]
    else:
        # A gate run prints its own verdict block (verdict_line False) and is listed in full with `-- -v`.
        hint = "pytest -v" if verdict_line else "vnet-accept gate -- -v"
        lines = family_lines(criteria, settings, verbose_hint=hint)
    if verdict_line:
        lines.append(f"gate: {readiness(dicts, settings).summary()}")
    return lines


def family_lines(criteria: list[Criterion], settings: dict[str, Any] | None = None,
                 verbose_hint: str = "pytest -v") -> list[str]:
    """One line per family (``PASS  parity: 6 passed``), the headline of each failed or errored criterion under
    its family, then every distinct skip reason once, with the criteria it covers, numbered as the report numbers
    them (:func:`vnet_accept.report.notjudged.reason_numbers`)."""
    from vnet_accept.report.families import by_family, label_of
    from vnet_accept.report.notjudged import not_judged, reason_numbers

    number = reason_numbers(not_judged([c.to_dict() for c in criteria], settings))
    reasons: dict[str, list[str]] = {reason: [] for reason in number}
    for c in criteria:
        if c.verdict == "skip":
            reasons[c.reason or "no reason given"].append(c.id)
    lines = []
    for family, members in by_family([c.to_dict() for c in criteria]):
        counts = {v: sum(m["verdict"] == v for m in members) for v in ("pass", "fail", "error", "skip")}
        word = "FAIL" if counts["fail"] else "ERROR" if counts["error"] else "PASS" if counts["pass"] else "SKIP"
        parts = [f"{counts[v]} {w}" for v, w in (("pass", "passed"), ("fail", "failed"), ("error", "errored"))
                 if counts[v]]
        if counts["skip"]:
            refs = sorted({number[m.get("reason") or "no reason given"] for m in members if m["verdict"] == "skip"})
            parts.append(f"{counts['skip']} not judged [{', '.join(map(str, refs))}]")
        lines.append(f"{word:5} {label_of(family)}: {', '.join(parts)}")
        lines += ["      " + Criterion.from_dict(m).headline() for m in members if m["verdict"] in ("fail", "error")]
    if reasons:
        lines.append(f"not judged, each reason once (every criterion's line: {verbose_hint}, or gate-report.md):")
        for reason, ids in reasons.items():
            shown = ", ".join(ids[:3]) + (f", … ({len(ids) - 3} more)" if len(ids) > 3 else "")
            lines.append(f"  [{number[reason]}] {reason} ({len(ids)} criteri{'a' if len(ids) != 1 else 'on'}: "
                         f"{shown})")
    return lines


def _verbosity(config: pytest.Config) -> int:
    get = getattr(config, "get_verbosity", None)
    return get() if callable(get) else int(getattr(config.option, "verbose", 0) or 0)
