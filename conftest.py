import os

import pytest

# The gate's pytest plugin. Installed packages load it through the pytest11 entry point; naming it here too
# lets a plain checkout run `python -m pytest` before `pip install -e .` (pytest skips a second registration).
# pytester drives the plugin's own tests (tests/plugin).
pytest_plugins = ["vnet_accept.plugin", "pytester"]


@pytest.fixture
def benchmark(benchmark, request):
    """Under the ``perf`` marker a benchmark always measures: without ``--benchmark-enable`` (pytest.ini passes
    ``--benchmark-disable`` for the default run) it enables itself, so ``benchmark.stats`` is there for the test's
    own limits; under pytest-xdist, where pytest-benchmark cannot time, the test is skipped with that reason."""
    if request.node.get_closest_marker("perf") is not None and benchmark.disabled:
        if os.environ.get("PYTEST_XDIST_WORKER") or request.config.getoption("dist", "no") != "no":
            pytest.skip("pytest-benchmark does not time under pytest-xdist (-n); run pytest -m perf without -n")
        benchmark.disabled = False
    return benchmark
