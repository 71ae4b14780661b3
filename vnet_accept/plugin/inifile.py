"""The contributor's ``pytest.ini``/``tox.ini`` holds, whatever form a gate option's value takes on the command line.

pytest finds its rootdir and ini file (``Config.parse`` → ``determine_setup``) *before* any plugin has added its
options: the arguments argparse cannot place yet become test paths. ``pytest -m npu --npu-results DIR`` therefore
hands ``DIR`` to the search as a test path; with ``DIR`` outside the clone, the common ancestor of ``DIR`` and the
working directory holds no ini file, and the contributor's ``vnet_weights``/``luna16_root`` settings (and the ini's
``addopts``) silently vanish. ``--npu-results=DIR`` is one token and works; so does ``vnet-accept gate``, which always
passes ``--flag=value``.

The fix (pytest 9, ``pytest_load_initial_conftests``, which runs after the plugins' options are known and before the
initial conftests are loaded and the command line is parsed for good): parse the invocation again with every option
known, redo pytest's own rootdir/ini search with the test paths that remain, and - only when that finds another
rootdir or ini file - adopt it: the ini's values replace the empty ones, its ``addopts`` are put in front of the
arguments as pytest does, and the early namespace (test paths, ``--import-mode``, ``--confcutdir``) is re-parsed.
This touches pytest's private ``Config`` attributes (``_rootpath``, ``_inipath``, ``_inicfg``, ``_inicache``); when
a pytest version lacks them, the session stops with a usage error saying to write ``--option=VALUE`` instead of
judging without the contributor's settings.
"""

from __future__ import annotations

import copy
import os
import shlex
from typing import Any

import pytest

_PRIVATE = ("_rootpath", "_inipath", "_inicfg", "_inicache")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    redo_setup(early_config, parser, args)


def redo_setup(config: Any, parser: Any, args: list[str]) -> bool:
    """Adopt the rootdir and ini file pytest would have found had every option been known (see the module
    docstring); ``args`` is changed in place. Returns whether anything changed."""
    from _pytest.config.findpaths import determine_setup

    invocation = list(config.invocation_params.args)
    env = shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    known = parser.parse_known_args(env + invocation, namespace=copy.copy(config.option))
    rootpath, inipath, inicfg, _ = determine_setup(
        inifile=known.inifilename, override_ini=known.override_ini, args=known.file_or_dir,
        rootdir_cmd_arg=known.rootdir or None, invocation_dir=config.invocation_params.dir)
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return False  # the usual case: no option's value was taken for a test path
    missing = [name for name in _PRIVATE if not hasattr(config, name)]
    if missing:
        raise pytest.UsageError(f"an option's value given as a separate argument was read as a test path, so pytest "
                                f"did not find {inipath or 'the ini file'}; this pytest ({pytest.__version__}) cannot "
                                "be corrected from the plugin: write the option as --option=VALUE")
    old_addopts = list(config.getini("addopts")) if config.inipath else []
    if old_addopts and args[:len(old_addopts)] == old_addopts:
        del args[:len(old_addopts)]
    config._rootpath, config._inipath, config._inicfg = rootpath, inipath, inicfg
    config._inicache.clear()
    parser.extra_info["rootdir"] = str(rootpath)
    parser.extra_info["inifile"] = str(inipath)
    addopts = list(config.getini("addopts"))
    args[:0] = addopts
    config.known_args_namespace = parser.parse_known_args(args, namespace=copy.copy(config.option))
    if config.known_args_namespace.confcutdir is None:  # as Config.parse: the ini file's folder, else the rootdir
        config.known_args_namespace.confcutdir = str(inipath.parent if inipath else rootpath)
    if addopts:
        config.pluginmanager.consider_preparse(addopts, exclude_only=False)
    return True
