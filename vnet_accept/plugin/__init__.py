"""The vnet-accept pytest plugin: options, markers, fixtures, the artifact cache and the gate report.

Loaded through the ``pytest11`` entry point (and by the repository's ``conftest.py``). Feature fixtures live in
their own modules, listed in ``pytest_plugins``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vnet_accept.plugin.options import add_pytest_options, get_option

pytest_plugins = [
    "vnet_accept.plugin.records",
    "vnet_accept.plugin.fixtures",
    "vnet_accept.plugin.data_fixtures",
    "vnet_accept.plugin.accuracy_fixtures",
    "vnet_accept.plugin.ascend_fixtures",
    "vnet_accept.plugin.selftest_fixtures",
    "vnet_accept.plugin.submission",
    "vnet_accept.plugin.inifile",
]

#: Markers with their signature and an example (pytest.ini registers the same names for --strict-markers).
MARKERS = (
    "npu: needs an Ascend 310/310P host with CANN (atc, ais_bench or benchmark), or --npu-results DIR from one. "
    "Example: pytest -m npu --npu-results results/",
    "gpu: needs an NVIDIA GPU with CUDA-enabled PyTorch. Example: pytest -m gpu",
    "accuracy: runs the export -> preprocess -> infer -> postprocess chain and judges the error rate. "
    "Example: tox -e accuracy",
    "perf: pytest-benchmark benchmarks. Example: tox -e perf",
    "selftest_training: retrains the self-test model with its recipe and compares it with the shipped weights "
    "(minutes on a CPU). Example: pytest -m selftest_training",
    "criterion(id, description, threshold=None, units=None): the gate criterion a test decides; a skip before it "
    "records still appears in the gate report, under the same id and with the threshold it would be held to: "
    "{fields} of the id, and a threshold callable's parameters, come from the test's parameters or the gate's options. "
    "Example: @pytest.mark.criterion('om.atc.bs{batch_size}', 'ATC converts the ONNX at this batch size')",
)

PLUGIN_NAME = "vnet-accept-gate-report"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_pytest_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    # Imported here, not at the top: ``records`` is listed in pytest_plugins, and importing it before pytest
    # registers it would stop assertion rewriting for it (PytestAssertRewriteWarning outside this checkout).
    from vnet_accept.plugin.records import GateReportPlugin

    for line in MARKERS:
        config.addinivalue_line("markers", line)
    worker = getattr(config, "workerinput", None)
    if worker is not None:  # a pytest-xdist worker: its share of the CPUs, so workers do not oversubscribe them
        from vnet_accept.io_utils import claim_cpu_share

        claim_cpu_share(int(str(worker["workerid"]).lstrip("gw") or 0), int(worker["workercount"]))
    report_dir = get_option(config, "gate_report")
    settings = {dest: _jsonable(get_option(config, dest)) for dest in _SETTINGS_SHOWN}
    config.pluginmanager.register(GateReportPlugin(config, Path(report_dir) if report_dir else None, settings),
                                  PLUGIN_NAME)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker reads the xdist_group markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from vnet_accept.plugin.records import criterion_id, marker_threshold

    for item in items:
        marker = item.get_closest_marker("criterion")
        if marker is not None and not (marker.args or marker.kwargs.get("id")):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.criterion needs an id, e.g. "
                                    "@pytest.mark.criterion('parity.onnxrt_vs_torch', 'description')")
        if marker is not None:  # a template naming an unknown field fails here, not when the test skips
            criterion_id(item, marker)
            marker_threshold(item, marker)
    if config.pluginmanager.hasplugin("xdist"):
        _group_by_shared_runs(items)


#: Session fixtures that compute in memory (nothing to share through the artifact cache): under
#: ``pytest -n N --dist loadgroup`` every test using one runs in the same worker, so it is computed once.
_SHARED_RUNS = ("reduced_runs", "onnx_runs", "accuracy_runs", "selftest_chain", "selftest_runs")


def _group_by_shared_runs(items: list[pytest.Item]) -> None:
    for item in items:
        used = [name for name in _SHARED_RUNS if name in getattr(item, "fixturenames", ())]
        if used and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(f"vnet-accept-{used[0].replace('_', '-')}"))


_SETTINGS_SHOWN = ("vnet_weights", "onnx", "prep_bin", "prep_info", "luna16_root", "test_uids", "npu_results",
                   "shared_dir", "bn_mode", "parity_atol", "parity_max_flip_fraction", "invariance_atol",
                   "reference_error", "tolerance_pp")


def _jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
