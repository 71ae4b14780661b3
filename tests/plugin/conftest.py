"""Fixtures for the plugin tests, which run small inner pytest sessions through pytest's ``pytester``.

A non-root conftest may not declare ``pytest_plugins`` (pytest >= 8), so ``pytester`` has to be enabled at the
top: ``pytest_plugins = ["vnet_accept.plugin", "pytester"]`` in the root conftest, or ``-p pytester`` on the
command line. Without it these tests skip with that instruction instead of erroring on a missing fixture.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def gate_pytester(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """``pytester`` with the gate's environment variables cleared, so the caller's shell cannot leak in."""
    if not request.config.pluginmanager.has_plugin("pytester"):
        pytest.skip("needs pytest's pytester plugin: run with `-p pytester`, or add \"pytester\" to pytest_plugins "
                    "in the root conftest.py")
    for name in ("VNET_ACCEPT_SHARED", "VNET_ACCEPT_CACHE", "VNET_ACCEPT_NPU_RESULTS", "VNET_ACCEPT_ONNX",
                 "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    # Hermetic inner sessions: only the gate plugin (named in INNER_ARGS), not every installed pytest11 plugin.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return request.getfixturevalue("pytester")


# Inner sessions load the gate plugin explicitly (plugin autoload is off, see gate_pytester) and skip the cache
# and pytest's unraisable-exception plugin: at unconfigure that plugin runs gc.collect() five times, which costs
# ~1.5 s per session once torch is imported. Hypothesis' plugin would also re-import hypothesis in every session
# (pytester restores sys.modules afterwards), another few seconds each.
INNER_ARGS = ("-p", "vnet_accept.plugin", "-p", "no:cacheprovider", "-p", "no:unraisableexception")


@pytest.fixture
def run_inner(gate_pytester):
    """``run_inner(*args)``: run pytest in-process on the files made with ``gate_pytester``; a ``RunResult``."""

    def run(*args: str) -> pytest.RunResult:
        return gate_pytester.runpytest(*INNER_ARGS, *args)

    return run
