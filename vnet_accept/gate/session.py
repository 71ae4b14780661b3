"""The pytest plugin object the gate hands to ``pytest.main``: it checks the inputs once pytest has read its command
line and ini file (``pytest_cmdline_main``, before the session starts), and notes what pytest alone would not tell
afterwards (collection errors, interruptions, failed tests without a criterion)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from vnet_accept.errors import UsageError
from vnet_accept.gate.cmdline import PLUGIN_MODULE
from vnet_accept.gate.inputs import check_inputs, option_source


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
    tests_run: set[str] = field(default_factory=set)  # tests that passed, failed or skipped
    tests_with_criterion: set[str] = field(default_factory=set)

    def pytest_configure(self, config: Any) -> None:
        from vnet_accept.plugin.records import published_by_caller_key

        config.stash[published_by_caller_key] = True  # the verdict block names the published report

    @pytest.hookimpl(tryfirst=True)  # before the session starts: nothing has run yet
    def pytest_cmdline_main(self, config: Any) -> Any:
        from vnet_accept.options import OPTIONS
        from vnet_accept.plugin.options import get_option

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

        recorded = any(name == PROPERTY for name, _ in report.user_properties)
        if report.when == "call" or report.skipped or report.failed:
            self.tests_run.add(report.nodeid)
        if recorded:
            self.tests_with_criterion.add(report.nodeid)
        if report.failed:
            self.failed_tests.append({"nodeid": report.nodeid, "when": report.when, "criterion": recorded,
                                      "reason": _first_line(getattr(report, "longreprtext", ""))})

    @property
    def tests_without_criterion(self) -> list[str]:
        """Tests pytest counts (in its "N passed, M skipped" line) that recorded no criterion the gate counts."""
        return sorted(self.tests_run - self.tests_with_criterion)

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.interrupted = f"{excinfo.typename}: {excinfo.value}"

    def pytest_sessionfinish(self, session: Any, exitstatus: Any) -> None:
        reason = session.shouldfail or session.shouldstop
        if reason and not self.interrupted:
            self.stopped_early = str(reason)



