"""The gate's options as pytest options and ini settings, and their resolved values (table: :mod:`vnet_accept.options`).

Resolution order: command line, then environment variable (where one is named), then the ini file
(``pytest.ini``/``tox.ini``, same name with underscores), then the default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from vnet_accept.errors import UsageError
from vnet_accept.options import GROUP, OPTIONS, OPTIONS_BY_DEST, Option


def add_pytest_options(parser: Any) -> None:
    group = parser.getgroup(GROUP, "VNet acceptance gate")
    for opt in OPTIONS:
        group.addoption(opt.flag, dest=opt.dest, metavar=opt.metavar, type=opt.type, default=None,
                        help=opt.help_text())
        parser.addini(opt.ini, opt.help, type="string", default=None)


def get_option(config: Any, dest: str) -> Any:
    """The resolved value of an option: command line, environment, ini, default."""
    opt = OPTIONS_BY_DEST[dest]
    value = config.getoption(dest, default=None)
    if value is not None:
        return value
    if opt.env and os.environ.get(opt.env):
        return _parse(opt, os.environ[opt.env], f"environment variable {opt.env}")
    ini_value = config.getini(opt.ini)
    if ini_value not in (None, "", []):
        return _parse(opt, str(ini_value).strip(), f"ini setting {opt.ini}")
    return opt.default


def stash_settings(config: Any, key: Any, settings_from: Callable[[dict[str, Any]], Any]) -> None:
    """Check the options at start-up: store ``settings_from(every resolved value)`` under ``key`` in the config's
    stash; its :class:`UsageError` stops the session before any test runs."""
    import pytest

    values = {opt.dest: get_option(config, opt.dest) for opt in OPTIONS}
    try:
        config.stash[key] = settings_from(values)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _parse(opt: Option, text: str, where: str) -> Any:
    try:
        return opt.type(text)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        import pytest

        raise pytest.UsageError(f"{where}: {exc}") from None
