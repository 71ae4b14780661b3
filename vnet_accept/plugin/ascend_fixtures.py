"""Fixtures of the NPU side of the gate: resolved Ascend options, the tools found, the SoC, OMs built on demand,
the T4 thresholds, the folder of results copied from an Ascend host, and ``npu_evidence`` - what the ``npu``
criteria judge (that folder, or one filled here by ATC and the inference tool) - with ``npu_card``.

A fixture that needs something absent skips with the tool's own message — what is missing, where it was looked
for, how to provide it, and ``--npu-results DIR`` as the alternative — so ``pytest -m npu`` on a machine without
CANN reports exactly what each test lacked.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from vnet_accept.errors import ToolError, UsageError
from vnet_accept.options import OPTIONS_BY_DEST


@dataclass(frozen=True)
class NpuSettings:
    """The Ascend-related options, parsed and checked once per session."""

    results_dir: Path | None
    batch_sizes: tuple[int, ...]
    soc_version: str | None
    chips_per_card: int | None
    device_ids: tuple[int, ...]
    npu_tool: str
    atc: str | None
    npu_smi: str | None
    ais_bench: str | None
    benchmark_tool: str | None
    t4_logs: tuple[Path, ...]
    statistic: str
    loops: int
    atc_timeout_s: float
    npu_timeout_s: float
    parity_tiles: int
    om_max_flip_fraction: float
    om_invariance_max_flip_fraction: float
    bn_semantics_margin: float
    #: The ONNX the OMs are compared with: ``--onnx``, else the one ``*.onnx`` in ``results_dir``
    #: (:func:`vnet_accept.ascend.onnx_choice.onnx_for_oms`).
    onnx: Path | None = None


def parse_path_list(text: str | None) -> tuple[Path, ...]:
    return tuple(Path(p.strip()).expanduser() for p in (text or "").split(",") if p.strip())


def npu_settings_from(values: dict) -> NpuSettings:
    """Check the option values; a bad one is a usage error naming the option and what to pass. A value not given
    takes the options table's default."""
    values = {dest: (values.get(dest) if values.get(dest) is not None else opt.default)
              for dest, opt in OPTIONS_BY_DEST.items()}
    results = values.get("npu_results")
    if results:
        results = Path(results).expanduser()
        if not results.is_dir():
            raise UsageError(f"--npu-results {results}: no such folder; copy the results from the Ascend host there")
    batch_sizes = tuple(values.get("batch_sizes") or ())
    if not batch_sizes or any(bs < 1 for bs in batch_sizes):
        raise UsageError(f"--batch-sizes {','.join(map(str, batch_sizes))}: give batch sizes >= 1, e.g. 1,4,8,16,32")
    margin = values["bn_semantics_margin"]
    if margin <= 1.0:
        raise UsageError(f"--bn-semantics-margin {margin:g}: the runner-up must be farther than the winner; give a "
                         "factor > 1, e.g. 2")
    t4_logs = parse_path_list(values.get("t4_logs"))
    absent = [str(p) for p in t4_logs if not p.is_file()]
    if absent:
        raise UsageError(f"--t4-logs: no such file {', '.join(absent)}")
    from vnet_accept.ascend.onnx_choice import onnx_for_oms

    onnx = onnx_for_oms(results or None, values.get("onnx"))  # one ONNX, never switched silently
    return NpuSettings(
        onnx=onnx, results_dir=results or None, batch_sizes=batch_sizes, soc_version=values.get("soc_version"),
        chips_per_card=values.get("chips_per_card"), device_ids=tuple(values.get("device_ids") or (0,)),
        npu_tool=values["npu_tool"], atc=values.get("atc"), npu_smi=values.get("npu_smi"),
        ais_bench=values.get("ais_bench"), benchmark_tool=values.get("benchmark_tool"), t4_logs=t4_logs,
        statistic=values["perf_statistic"], loops=values["npu_loops"], atc_timeout_s=values["atc_timeout"],
        npu_timeout_s=values["npu_timeout"], parity_tiles=values["om_parity_tiles"],
        om_max_flip_fraction=values["om_max_flip_fraction"],
        om_invariance_max_flip_fraction=values["om_invariance_max_flip_fraction"], bn_semantics_margin=margin)


settings_key = pytest.StashKey[NpuSettings]()


def pytest_configure(config: pytest.Config) -> None:
    """Check the Ascend options at start-up: a bad value stops the session before any test runs."""
    from vnet_accept.plugin.options import stash_settings

    stash_settings(config, settings_key, npu_settings_from)


@pytest.fixture(scope="session")
def npu_settings(pytestconfig: pytest.Config) -> NpuSettings:
    return pytestconfig.stash[settings_key]


@pytest.fixture(scope="session")
def ascend_toolset(npu_settings: NpuSettings):
    """What this machine has (never skips; absent tools are recorded with their reasons)."""
    from vnet_accept.ascend.tools import detect_tools

    return detect_tools(atc=npu_settings.atc, npu_smi=npu_settings.npu_smi, ais_bench=npu_settings.ais_bench,
                        benchmark=npu_settings.benchmark_tool)


@pytest.fixture(scope="session")
def npu_soc_version(npu_settings: NpuSettings, ascend_toolset) -> str:
    """``--soc-version``, else the SoC of the ``--device-ids`` as ``npu-smi info`` reports it."""
    if npu_settings.soc_version:
        return npu_settings.soc_version
    from vnet_accept.ascend.npu_smi import query_npu_smi, soc_version_of

    try:
        chips = query_npu_smi(ascend_toolset.require("npu-smi"))
        return soc_version_of(chips, npu_settings.device_ids)
    except ToolError as exc:
        pytest.skip(f"SoC version unknown: {exc}")


@pytest.fixture(scope="session")
def t4_thresholds(npu_settings: NpuSettings):
    """``{batch size: T4Threshold}`` from ``--t4-logs`` (under ``--perf-statistic``), else the port's table."""
    from vnet_accept.perf.parsers import parse_perf_paths
    from vnet_accept.perf.rules import reference_t4_thresholds, t4_thresholds_from

    if not npu_settings.t4_logs:
        return reference_t4_thresholds()
    scan = parse_perf_paths(npu_settings.t4_logs, statistic=npu_settings.statistic)
    if scan.rejected:
        raise pytest.UsageError(f"--t4-logs: {scan.rejected[0]}")
    try:
        return t4_thresholds_from(scan.measurements)
    except UsageError as exc:
        raise pytest.UsageError(f"--t4-logs: {exc}") from None


@pytest.fixture(scope="session")
def npu_evidence(npu_settings: NpuSettings, ascend_toolset, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory):
    """What the ``npu`` tests judge (:mod:`vnet_accept.ascend.evidence`): ``--npu-results DIR`` as found, else on
    an Ascend host a folder filled here by ATC and the inference tool (same layout, same judging). Without both,
    a skip naming every missing piece and ``--npu-results DIR`` as the alternative."""
    from vnet_accept.ascend.evidence import LiveEvidence, ReplayEvidence
    from vnet_accept.ascend.results_folder import load_npu_results
    from vnet_accept.ascend.tools import ToolMissing
    from vnet_accept.errors import DataError

    if npu_settings.results_dir is not None:
        try:
            results = load_npu_results(npu_settings.results_dir)
        except DataError as exc:
            raise pytest.UsageError(str(exc)) from None
        for problem in [*results.problems, *results.notes]:  # parts not used: said once, in the warnings summary
            warnings.warn(f"--npu-results {results.root}: {problem}", UserWarning, stacklevel=1)
        return ReplayEvidence(results)
    missing = []
    for need in (lambda: ascend_toolset.require("atc"), lambda: ascend_toolset.inference_tool(npu_settings.npu_tool)):
        try:
            need()
        except ToolMissing as exc:
            missing.append(f"no NPU inference tool ({exc.looked})" if exc.tool.startswith("an NPU") else
                           f"{exc.tool} {exc.looked}")
    if npu_settings.soc_version is None and ascend_toolset.npu_smi is None:
        missing.append("SoC unknown (npu-smi not on PATH, no --soc-version)")
    if missing:
        pytest.skip(f"no --npu-results DIR and the OM cannot run here: {'; '.join(missing)}. Install CANN and "
                    "`source /usr/local/Ascend/ascend-toolkit/set_env.sh` plus ais_bench (or pass --atc, --ais-bench/"
                    "--benchmark-tool, --soc-version), or pass --npu-results DIR with results and logs copied from "
                    "an Ascend host")
    from vnet_accept.ascend.collect import LiveCollector

    dataset = request.getfixturevalue("accuracy_dataset")
    onnx = request.getfixturevalue("onnx_under_test").path  # --onnx, else the gate's reference export
    collector = LiveCollector(
        tmp_path_factory.mktemp("npu-results"), onnx=onnx, manifest=dataset.manifest,
        soc_version=request.getfixturevalue("npu_soc_version"), atc=ascend_toolset.require("atc"),
        tool=ascend_toolset.inference_tool(npu_settings.npu_tool), cache=request.getfixturevalue("artifact_cache"),
        device_ids=npu_settings.device_ids, loops=npu_settings.loops, atc_timeout_s=npu_settings.atc_timeout_s,
        npu_timeout_s=npu_settings.npu_timeout_s, npu_smi=ascend_toolset.npu_smi)
    return LiveEvidence(collector)


@dataclass(frozen=True)
class NpuCard:
    """What says how many chips make the card: the SoC (``--soc-version``, else the results' ``npu-smi.txt``) and
    ``--chips-per-card`` if given, each with where it came from. The throughput judgement
    (:func:`vnet_accept.judge.perf.throughput`) checks one against the other."""

    soc_version: str | None
    soc_source: str
    chips_given: int | None


@pytest.fixture(scope="session")
def npu_card(npu_settings: NpuSettings, npu_evidence) -> NpuCard:
    """The SoC and ``--chips-per-card``; a skip naming what to pass when neither says (card fps = per-chip fps ×
    chips per card)."""
    soc = npu_settings.soc_version or npu_evidence.soc_version
    soc_source = "--soc-version" if npu_settings.soc_version else f"{npu_evidence.root.name}/npu-smi.txt"
    if not soc and not npu_settings.chips_per_card:
        pytest.skip("chips per card unknown: pass --soc-version (Ascend310: 4 chips a card, Ascend310P3: 1) or "
                    "--chips-per-card N, or put `npu-smi info` output in DIR/npu-smi.txt")
    return NpuCard(soc, soc_source, npu_settings.chips_per_card)
