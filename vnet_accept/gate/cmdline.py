"""The gate's command line: every option of the table (:data:`vnet_accept.options.OPTIONS`) under its own flag,
``--weights``/``--luna16`` as short aliases, ``-o REPORT_DIR``, and pytest arguments after ``--``; and the pytest
arguments the gate runs with.

Options given here are handed to pytest as ``--flag=value``; the ini settings of the ``pytest.ini``/``tox.ini``
found from the working directory and the ``VNET_ACCEPT_*`` environment variables apply as in any pytest run.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vnet_accept.errors import UsageError
from vnet_accept.options import OPTIONS

DEFAULT_SUITE: tuple[str, ...] = ("--pyargs", "vnet_accept.checks")
DEFAULT_REPORT_DIR = "gate-report"
GATE_MARK_EXPRESSION = "not perf"
GATE_SUMMARY_CHARS = "-rfE"
#: pytest-benchmark's storage folder inside the staging folder (see :func:`build_pytest_args`).
BENCHMARK_STORAGE = ".benchmarks"
#: Short gate spellings of table options (dest -> extra flags); the table stays the one list of options.
ALIASES: Mapping[str, tuple[str, ...]] = {"vnet_weights": ("--weights",), "luna16_root": ("--luna16",),
                                          "prep_info": ("--info",)}
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

    return [f"{opt.flag}={getattr(ns, opt.dest)}" for opt in OPTIONS
            if opt.dest not in MANAGED and getattr(ns, opt.dest, None) is not None]


def check_command_line(ns: argparse.Namespace) -> None:
    """Conflicts visible on the command line alone (before pytest starts)."""

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


def build_pytest_args(ns: argparse.Namespace, staging: Path, suite: Sequence[str] = DEFAULT_SUITE) -> list[str]:
    """``pytest.main``'s arguments: the criteria, the gate's mark expression, the report and JUnit files in the
    staging folder, the options given, then whatever came after ``--``."""
    from vnet_accept.report.publish import JUNIT_XML

    # The pytest11 entry point loads the plugin; name it only when autoloading is off (naming it again would
    # make pytest warn that the already-imported module cannot be assertion-rewritten).
    plugin = ["-p", PLUGIN_MODULE] if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else []
    # -rfE: pytest's short summary lists failures and errors only; the skip reasons are in the criteria section
    # (each once, with the criteria it covers) and in the verdict block (an ini's -ra would print each again).
    # The gate runs no benchmark (-m "not perf"), but pytest-benchmark makes its storage folder when it starts:
    # an empty .benchmarks/ in the user's working directory. It goes into the staging folder, removed before publishing.
    user = ns.pytest_args or []
    storage = [] if any(a.startswith("--benchmark-storage") for a in user) else \
        [f"--benchmark-storage={staging / BENCHMARK_STORAGE}"]
    return [*plugin, *suite, "-m", GATE_MARK_EXPRESSION, GATE_SUMMARY_CHARS, f"--gate-report={staging}",
            f"--junitxml={staging / JUNIT_XML}", *storage, *gate_option_args(ns), *user]
