"""``vnet-accept gate``: run every criterion, decide, and write what a contributor files.

The gate is pytest underneath: ``pytest.main`` in this process over the installed criteria
(``--pyargs vnet_accept.checks``) with ``-m "not perf"`` (accuracy, npu and gpu criteria run or skip
themselves), ``--gate-report`` and ``--junitxml`` into a staging folder, then the Markdown, ``modelzoo_level.txt``
and the PNGs rendered from the JSON, and the folder swapped into place (:mod:`vnet_accept.report.publish`).
Everything after ``--`` goes to pytest unchanged (a later ``-m`` replaces the gate's).

Options are the plugin's table (:data:`vnet_accept.plugin.options.OPTIONS`): every ``--vnet-…`` option is a gate
option under the same name, ``--weights`` and ``--luna16`` are short aliases, and the ini settings of the
``pytest.ini``/``tox.ini`` found from the working directory and the ``VNET_ACCEPT_*`` environment variables apply
as in any pytest run. Inputs are checked after pytest has read its command line and ini file and before the
session starts (``pytest_cmdline_main``), so a value from any of those places is checked the same way.

Exit status: 0 every applicable criterion passed; 1 a criterion (or a test) failed; 2 a usage or environment
error — bad input (one line saying what and what to do, no report), nothing judged, no tests collected, an
interrupted run or a pytest error (the report, if any, is marked incomplete).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vnet_accept.errors import UsageError

DEFAULT_SUITE: tuple[str, ...] = ("--pyargs", "vnet_accept.checks")
DEFAULT_REPORT_DIR = "gate-report"
GATE_MARK_EXPRESSION = "not perf"
#: Short gate spellings of table options (dest -> extra flags); the table stays the one list of options.
ALIASES: Mapping[str, tuple[str, ...]] = {"vnet_weights": ("--weights",), "luna16_root": ("--luna16",)}
#: Table options the gate manages itself (``--gate-report`` is the report folder, ``-o``).
MANAGED = ("gate_report",)
#: pytest options that cannot be passed after ``--``: the gate sets them, or they produce no verdicts.
REFUSED_PASSTHROUGH: Mapping[str, str] = {
    "--junitxml": "the gate writes JUnit XML into the report folder (junit.xml)",
    "--junit-xml": "the gate writes JUnit XML into the report folder (junit.xml)",
    "--gate-report": "the report folder is -o REPORT_DIR",
    "--collect-only": "it runs no criterion", "--co": "it runs no criterion",
    "--setup-only": "it runs no criterion", "--setup-plan": "it runs no criterion",
    "--fixtures": "it runs no criterion", "--fixtures-per-test": "it runs no criterion",
    "--markers": "it runs no criterion", "-h": "it runs no criterion", "--help": "it runs no criterion",
    "--version": "it runs no criterion", "-V": "it runs no criterion",
}
PLUGIN_MODULE = "vnet_accept.plugin"


# --- the command line -----------------------------------------------------------------------------------------
class _Once(argparse.Action):
    """Store an option; giving it twice with different values (e.g. --weights A --vnet-weights B) is a conflict."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        previous = getattr(namespace, self.dest, None)
        given = namespace.__dict__.setdefault("_given_as", {})
        if previous is not None and previous != values:
            namespace.__dict__.setdefault("_conflicts", []).append(
                f"{given.get(self.dest)} {previous} and {option_string} {values} conflict; give one")
        given[self.dest] = option_string
        setattr(namespace, self.dest, values)


def _checked(opt: Any) -> Any:
    """argparse type: validate with the table's parser, keep the text (it is handed to pytest as given)."""

    def parse(text: str) -> str:
        opt.type(text)
        return text

    parse.__name__ = getattr(opt.type, "__name__", "value")
    return parse


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    from vnet_accept.plugin.options import OPTIONS

    parser.add_argument("-o", "--output", "--gate-report", dest="output", action=_Once, metavar="REPORT_DIR",
                        help=f"report folder, replaced as a whole when the run finishes (default: "
                             f"./{DEFAULT_REPORT_DIR})")
    group = parser.add_argument_group("criteria options (also pytest options and ini settings)")
    for opt in OPTIONS:
        if opt.dest in MANAGED:
            continue
        flags = [*ALIASES.get(opt.dest, ()), opt.flag]
        group.add_argument(*flags, dest=opt.dest, action=_Once, type=_checked(opt), metavar=opt.metavar,
                           help=opt.help_text())
    parser.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                        help="extra pytest arguments after --, e.g. -- -k parity -x (a -m here replaces the gate's "
                             f"-m \"{GATE_MARK_EXPRESSION}\")")


def gate_option_args(ns: argparse.Namespace) -> list[str]:
    """The table options given to the gate, as pytest arguments (``--vnet-weights=W`` …)."""
    from vnet_accept.plugin.options import OPTIONS

    return [f"{opt.flag}={getattr(ns, opt.dest)}" for opt in OPTIONS
            if opt.dest not in MANAGED and getattr(ns, opt.dest, None) is not None]


def check_command_line(ns: argparse.Namespace) -> None:
    """Conflicts visible on the command line alone (before pytest starts)."""
    from vnet_accept.plugin.options import OPTIONS

    problems = list(getattr(ns, "_conflicts", []))
    flags = {opt.flag: opt for opt in OPTIONS}
    args = list(ns.pytest_args or [])
    for i, token in enumerate(args):
        name, eq, inline = token.partition("=")
        if name in REFUSED_PASSTHROUGH:
            problems.append(f"{name} cannot be passed to the gate ({REFUSED_PASSTHROUGH[name]}); drop it, or run "
                            f"pytest --pyargs vnet_accept.checks {name} directly")
        plugin_off = token[2:] if token.startswith("-p") and len(token) > 2 else (
            args[i + 1] if token == "-p" and i + 1 < len(args) else "")
        if plugin_off.strip() in (f"no:{PLUGIN_MODULE}", "no:vnet-accept-gate-report"):
            problems.append(f"-p {plugin_off.strip()} disables the gate's own plugin; drop it")
        opt = flags.get(name)
        if opt is not None:
            value = inline if eq else (args[i + 1] if i + 1 < len(args) else None)
            if opt.dest in MANAGED:
                continue  # reported above
            given = getattr(ns, opt.dest, None)
            if given is not None and value is not None and given != value:
                problems.append(f"{opt.flag} is {given} before -- and {value} after it; give it once")
    if getattr(ns, "luna16_root", None) and (getattr(ns, "synthetic_scans", None) or
                                             getattr(ns, "synthetic_seed", None)):
        problems.append("--synthetic-scans/--synthetic-seed shape the synthetic dataset, which --luna16 replaces; "
                        "drop one of them")
    if problems:
        raise UsageError(problems[0] + (f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""))


# --- checking the resolved inputs -----------------------------------------------------------------------------
def option_source(config: Any, dest: str) -> str:
    """Where an option's value came from, for messages: ``--vnet-weights``, ``VNET_ACCEPT_SHARED``, ``pytest.ini``."""
    from vnet_accept.plugin.options import OPTIONS_BY_DEST

    opt = OPTIONS_BY_DEST[dest]
    if config.getoption(dest, default=None) is not None:
        return opt.flag
    if opt.env and os.environ.get(opt.env):
        return f"{opt.flag} (from {opt.env})"
    inipath = getattr(config, "inipath", None)
    return f"{opt.flag} (ini setting {opt.ini} in {inipath.name if inipath else 'the ini file'})"


def check_inputs(values: Mapping[str, Any], source: Any = None) -> dict[str, Any]:
    """Check the resolved inputs before any criterion runs; raise :class:`UsageError` naming the option.
    Returns facts for the report's "judged on" line (checkpoint sha256, dataset layout, UID count)."""
    source = source or (lambda dest: "--" + dest.replace("_", "-"))
    facts: dict[str, Any] = {}
    weights = values.get("vnet_weights")
    if weights and not Path(weights).expanduser().is_file():  # said before importing torch for load_checkpoint
        raise UsageError(f"{source('vnet_weights')}: checkpoint {weights} does not exist; pass the trained "
                         "vnet_model_best.pth.tar (or write a seeded stand-in with `vnet-accept checkpoint random "
                         "-o FILE`)")
    if weights:
        from vnet_accept.model.checkpoint import load_checkpoint

        try:
            ckpt = load_checkpoint(Path(weights).expanduser())
        except UsageError as exc:
            raise UsageError(f"{source('vnet_weights')}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure to load is the user's file, said in one line
            raise UsageError(f"{source('vnet_weights')}: {weights} cannot be loaded ({type(exc).__name__}: {exc}); "
                             "pass the trained vnet_model_best.pth.tar") from None
        facts["weights"] = {"path": str(weights), "sha256": ckpt.sha256}
    root = values.get("luna16_root")
    if root:
        from vnet_accept.data.discovery import discover

        try:
            dataset = discover(Path(root).expanduser())
        except UsageError as exc:
            raise UsageError(f"{source('luna16_root')}: {exc}") from None
        facts["luna16"] = {"root": str(root), "layouts": [name for name in ("raw", "normalized")
                                                          if getattr(dataset, name, None) is not None]}
    uids = values.get("test_uids")
    if uids:
        from vnet_accept.data.uids import read_uid_file

        try:
            facts["test_uids"] = {"file": str(uids), "count": len(read_uid_file(Path(uids).expanduser()))}
        except UsageError as exc:
            raise UsageError(f"{source('test_uids')}: {exc}") from None
    shared = values.get("shared_dir")
    if shared and not Path(shared).expanduser().is_dir():
        raise UsageError(f"{source('shared_dir')}: {shared} is not a folder; pass the folder holding SPEC.md and "
                         "reference/, or leave it unset")
    cache = values.get("vnet_cache_dir")
    if cache:
        path = Path(cache).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{source('vnet_cache_dir')}: cannot create {path} ({exc.strerror or exc}); pass a "
                             "folder you can write to") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{source('vnet_cache_dir')}: {path} is not writable; pass a folder you can write to")
    try:
        from vnet_accept.plugin.ascend_fixtures import npu_settings_from
    except ImportError:  # pragma: no cover - the NPU side not installed
        npu_settings_from = None
    if npu_settings_from is not None:
        try:
            npu_settings_from(dict(values))
        except UsageError as exc:
            text = str(exc)
            raise UsageError(text if text.startswith("--") else f"NPU options: {text}") from None
    return facts


# --- the in-process session -----------------------------------------------------------------------------------
def _first_line(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return ((errors or lines or [""])[0 if errors else -1])[:limit]


@dataclass(eq=False)  # pluggy keeps plugins in sets: identity hashing
class GateSession:
    """A pytest plugin object the gate passes to ``pytest.main``: checks inputs, and notes what pytest alone
    would not tell afterwards (collection errors, interruptions, failed tests without a criterion)."""

    usage_error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    collection_errors: list[dict[str, str]] = field(default_factory=list)
    failed_tests: list[dict[str, Any]] = field(default_factory=list)
    interrupted: str | None = None
    stopped_early: str | None = None
    deselected: int = 0
    selected: int = 0
    inipath: str | None = None
    rootpath: str | None = None

    @pytest.hookimpl(tryfirst=True)  # before the session starts: nothing has run yet
    def pytest_cmdline_main(self, config: Any) -> Any:
        from vnet_accept.plugin.options import OPTIONS, get_option

        self.inipath = str(config.inipath) if config.inipath else None
        self.rootpath = str(config.rootpath)
        try:
            if config.pluginmanager.get_plugin(PLUGIN_MODULE) is None:
                raise UsageError(f"the {PLUGIN_MODULE} pytest plugin is not loaded (blocked with -p no:… or not "
                                 "installed); reinstall with pip install -e . and drop any -p no:vnet…")
            self.settings = {opt.dest: get_option(config, opt.dest) for opt in OPTIONS}
            self.facts = check_inputs(self.settings, lambda dest: option_source(config, dest))
        except (UsageError, pytest.UsageError) as exc:
            self.usage_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return pytest.ExitCode.USAGE_ERROR
        return None

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collection_errors.append({"nodeid": report.nodeid or ".",
                                           "reason": _first_line(getattr(report, "longreprtext", ""))})

    def pytest_deselected(self, items: Sequence[Any]) -> None:
        self.deselected += len(items)

    def pytest_collection_finish(self, session: Any) -> None:
        self.selected = len(session.items)

    def pytest_runtest_logreport(self, report: Any) -> None:
        from vnet_accept.plugin.records import PROPERTY

        if report.failed:
            recorded = any(name == PROPERTY for name, _ in report.user_properties)
            self.failed_tests.append({"nodeid": report.nodeid, "when": report.when, "criterion": recorded,
                                      "reason": _first_line(getattr(report, "longreprtext", ""))})

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.interrupted = f"{excinfo.typename}: {excinfo.value}"

    def pytest_sessionfinish(self, session: Any, exitstatus: Any) -> None:
        reason = session.shouldfail or session.shouldstop
        if reason and not self.interrupted:
            self.stopped_early = str(reason)


# --- deciding -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    exit_code: int  # the gate's: 0 pass, 1 fail, 2 usage/environment
    complete: bool  # the run finished: its report may replace the previous one
    explanation: str
    has_report: bool = True  # a gate-report.json exists to render


def decide(pytest_code: int, counts: Mapping[str, int] | None, *, usage_error: str | None = None,
           collection_errors: Sequence[Mapping[str, str]] = (), interrupted: str | None = None,
           stopped_early: str | None = None, failed_tests: Sequence[Mapping[str, Any]] = ()) -> Outcome:
    """The gate's exit status from pytest's and the criteria's verdict counts (None: no JSON was written).

    pytest 0 → 0, 1 → 1, 2/3/4/5 → 2 (interrupted or collection errors / internal error / usage error / no tests);
    a failed or errored criterion → 1 whatever pytest says; no criterion judged (all skipped) → 2."""
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
    return Outcome(0, True, "every applicable criterion passed"
                   + (f"; {skipped} not judged (see \"not judged\")" if skipped else ""))


# --- the report's gate section and the terminal verdict -------------------------------------------------------
def judged_on(settings: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    lines = []
    if facts.get("weights"):
        w = facts["weights"]
        lines.append(f"checkpoint {w['path']} (sha256 {w['sha256'][:12]}…)")
    else:
        lines.append("seeded stand-in weights (no --weights: not the trained checkpoint)")
    if facts.get("luna16"):
        d = facts["luna16"]
        lines.append(f"LUNA16 at {d['root']} ({' and '.join(d['layouts'])} layout)")
    else:
        lines.append(f"synthetic LUNA16-like dataset ({settings.get('synthetic_scans')} scans, seed "
                     f"{settings.get('synthetic_seed')}; no --luna16)")
    if facts.get("test_uids"):
        u = facts["test_uids"]
        lines.append(f"{u['count']} test UIDs from {u['file']}")
    lines.append(f"NPU results from {settings['npu_results']}" if settings.get("npu_results")
                 else "no --npu-results (NPU criteria need CANN on this machine)")
    return lines


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def finalise_report(report: dict[str, Any], outcome: Outcome, session: GateSession, argv: Sequence[str],
                    pytest_args: Sequence[str], pytest_code: int, target: Path) -> dict[str, Any]:
    report["complete"] = outcome.complete
    report["settings"] = {**{k: _jsonable(v) for k, v in session.settings.items()}, **report.get("settings", {})}
    prov = report.setdefault("provenance", {})
    prov["command_line"] = ["vnet-accept", "gate", *argv]
    prov["pytest_args"] = list(pytest_args)
    prov["ini_file"] = session.inipath
    prov["rootdir"] = session.rootpath
    report["gate"] = {
        "exit_code": outcome.exit_code, "pytest_exit_code": int(pytest_code), "explanation": outcome.explanation,
        "judged_on": judged_on(session.settings, session.facts), "inputs": session.facts,
        "failed_tests": [t for t in session.failed_tests if not t.get("criterion")],
        "collection_errors": session.collection_errors, "stopped_early": session.stopped_early,
        "interrupted": session.interrupted, "tests_selected": session.selected,
        "tests_deselected": session.deselected, "report_dir": str(target),
    }
    return report


MAX_EVIDENCE_BYTES = 64 << 20


def copy_evidence(report: dict[str, Any], directory: Path) -> list[str]:
    """Copy the worst volumes' arrays (``details.worst_volume.npz``) into the report folder, so the folder is
    self-contained and ``vnet-accept report`` can draw the picture again after the cache is gone."""
    copied = []
    for c in report.get("criteria", []):
        worst = (c.get("details") or {}).get("worst_volume")
        npz = Path(str(worst.get("npz"))) if isinstance(worst, Mapping) and worst.get("npz") else None
        if npz is None or not npz.is_file() or npz.stat().st_size > MAX_EVIDENCE_BYTES:
            continue
        if npz.parent.resolve() == directory.resolve():  # written next to the report already (--gate-report)
            copied.append(npz.name)
            continue
        name = f"{c['id'].split('[', 1)[0]}.worst_volume.npz"
        shutil.copyfile(npz, directory / name)
        copied.append(name)
    report["files"] = [*report.get("files", []), *copied]
    return copied


def relocate(report: dict[str, Any], staging: Path, final: Path) -> dict[str, Any]:
    """Paths the criteria recorded inside the staging folder (artifacts written next to the report) name the
    folder the report ends up in."""
    import json

    old, new = json.dumps(str(staging))[1:-1], json.dumps(str(final))[1:-1]
    return json.loads(json.dumps(report).replace(old, new))


def verdict_block(report: Mapping[str, Any] | None, outcome: Outcome, where: Path | None,
                  width: int | None = None) -> list[str]:
    """The short block the gate ends with: verdict, counts, failures' headlines, not-judged groups, files."""
    from vnet_accept.report.modelzoo import modelzoo_statuses
    from vnet_accept.report.notjudged import not_judged, summary_line
    from vnet_accept.report.record import Criterion

    width = width or min(shutil.get_terminal_size((100, 20)).columns, 120)
    word = {0: "PASS", 1: "FAIL"}.get(outcome.exit_code, "NO VERDICT")
    if not outcome.complete:
        word += " (INCOMPLETE)"
    title = f" vnet-accept gate: {word} "
    lines = [title.center(width, "=")]
    criteria = list((report or {}).get("criteria", []))
    counts = ((report or {}).get("summary") or {}).get("counts") or {}
    if criteria:
        parts = [f"{counts.get(k, 0)} {w}" for k, w in (("pass", "passed"), ("fail", "failed"),
                                                        ("error", "errored"), ("skip", "not judged"))
                 if counts.get(k)]
        lines.append(f"{len(criteria)} criteria: {', '.join(parts)}")
    lines.append(f"exit {outcome.exit_code}: {outcome.explanation}")
    gate = (report or {}).get("gate") or {}
    if gate.get("judged_on"):
        lines.append("judged on: " + "; ".join(gate["judged_on"]))
    failed = [c for c in criteria if c.get("verdict") in ("fail", "error")]
    if failed:
        lines.append("failed:")
    for c in failed[:8]:
        lines.append("  " + Criterion.from_dict(c).headline()[:width * 2])
    if len(failed) > 8:
        lines.append(f"  … and {len(failed) - 8} more failed criteria (see the report)")
    groups = not_judged(criteria)
    if groups:
        lines.append("not judged:")
        lines += ["  " + summary_line(g, width=3) for g in groups]
    if criteria:
        statuses = modelzoo_statuses(criteria)
        lines.append("modelzoo_level.txt: " + " ".join(s.line() + ("" if s.judged else " (not judged)")
                                                      for s in statuses))
    if where is not None:
        files = (report or {}).get("files") or []
        pngs = sum(f.endswith(".png") for f in files)
        lines.append(f"report: {where / 'gate-report.md'} (+ gate-report.json, modelzoo_level.txt, junit.xml, "
                     f"{pngs} PNG{'s' if pngs != 1 else ''})")
    lines.append("=" * width)
    return lines


# --- running it -----------------------------------------------------------------------------------------------
def build_pytest_args(ns: argparse.Namespace, staging: Path, suite: Sequence[str]) -> list[str]:
    from vnet_accept.report.publish import JUNIT_XML

    # The pytest11 entry point loads the plugin; name it only when autoloading is off (naming it again would
    # make pytest warn that the already-imported module cannot be assertion-rewritten).
    plugin = ["-p", PLUGIN_MODULE] if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else []
    return [*plugin, *suite, "-m", GATE_MARK_EXPRESSION, f"--gate-report={staging}",
            f"--junitxml={staging / JUNIT_XML}", *gate_option_args(ns), *(ns.pytest_args or [])]


def run_gate(ns: argparse.Namespace, argv: Sequence[str] | None = None,
             suite: Sequence[str] | None = None, out: Any = None) -> int:
    """Run the gate for parsed arguments ``ns``; ``suite`` replaces the criteria (tests use a tiny suite)."""
    from vnet_accept.report.publish import INCOMPLETE_SUFFIX, Staging, remove_stale_staging, render_report
    from vnet_accept.report.record import REPORT_JSON, load_report

    out = out or sys.stdout
    suite = DEFAULT_SUITE if suite is None else suite
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
    json_path = staging.path / REPORT_JSON
    report = None
    if json_path.is_file():
        try:
            report = load_report(json_path)
        except (OSError, ValueError):
            report = None
    counts = (report.get("summary") or {}).get("counts") if report else None
    outcome = decide(int(code), counts, usage_error=session.usage_error,
                     collection_errors=session.collection_errors, interrupted=session.interrupted,
                     stopped_early=session.stopped_early, failed_tests=session.failed_tests)
    if session.usage_error:
        staging.discard()
        raise UsageError(session.usage_error)
    if report is None or not outcome.has_report:
        staging.discard()
        for line in verdict_block(None, outcome, None):
            print(line, file=out)
        return outcome.exit_code
    finalise_report(report, outcome, session, argv, pytest_args, int(code), target)
    final = target if outcome.complete else target.with_name(target.name + INCOMPLETE_SUFFIX)
    copy_evidence(report, staging.path)
    report = relocate(report, staging.path, final)
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
