"""Stand-in executables for the CANN tools: small shell scripts that replay a recorded output and exit status,
and optionally write the files the real tool would (an OM, result files). They exercise process handling —
exit codes, time-outs, missing outputs, garbage — and say nothing about NPU correctness."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

#: Separates arguments in the calls record (no argument of ours contains it).
ARG_SEPARATOR = "\x1f"


class StandIn:
    """A stand-in executable and the record of how it was called."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls_file = path.with_suffix(".calls")

    @property
    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [line.split(ARG_SEPARATOR)[:-1] for line in self.calls_file.read_text().splitlines()]


def _script(calls: Path, output: Path | None, exit_code: int, sleep: float, om_suffix: str | None,
            writes: dict[str, Path], spawn_child: str | None) -> str:
    # POSIX sh, not Python: a stand-in starts in milliseconds, which keeps these tests fast.
    q = shlex.quote
    lines = ["#!/bin/sh", f"for a in \"$@\"; do printf '%s\\037' \"$a\"; done >> {q(str(calls))}",
             f"printf '\\n' >> {q(str(calls))}"]
    if spawn_child:
        lines.append(f"sleep 60 & echo $! > {q(spawn_child)}")
    if output is not None:
        lines.append(f"cat {q(str(output))}")
    if om_suffix is not None:
        lines += ["for a in \"$@\"; do case \"$a\" in",
                  f"  --output=*) printf OM > \"${{a#--output=}}\"{q(om_suffix)} ;;", "esac; done"]
    for target, source in writes.items():
        lines += [f"mkdir -p {q(str(Path(target).parent))}", f"cp {q(str(source))} {q(target)}"]
    if sleep:
        lines.append(f"sleep {sleep}")
    lines.append(f"exit {exit_code}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def stand_in(tmp_path: Path) -> Callable[..., StandIn]:
    """``stand_in(name, output=None, exit_code=0, *, sleep=0, om_suffix=None, writes=None, spawn_child=None)``.

    ``output`` is a file whose bytes the stand-in prints (CRLF and all) or a string. ``om_suffix`` makes it write
    ``<--output value><suffix>`` as ATC does; ``writes`` is ``{path: text}`` for result files; ``spawn_child`` a
    pid file for a helper process it starts (to test that a time-out stops the whole process group).
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)

    def make(name: str, output: str | Path | None = None, exit_code: int = 0, *, sleep: float = 0,
             om_suffix: str | None = None, writes: dict[str, str] | None = None,
             spawn_child: str | None = None) -> StandIn:
        path = bin_dir / name
        if isinstance(output, str):
            text_file = bin_dir / f"{name}.out"
            text_file.write_bytes(output.encode())
            output = text_file
        sources = {}
        for i, (target, text) in enumerate((writes or {}).items()):
            sources[str(target)] = bin_dir / f"{name}.write{i}"
            sources[str(target)].write_text(text)
        path.write_text(_script(path.with_suffix(".calls"), output, exit_code, sleep, om_suffix, sources,
                                spawn_child))
        path.chmod(0o755)
        return StandIn(path)

    return make


@pytest.fixture
def ascend_fixtures() -> Path:
    return FIXTURES / "ascend"


@pytest.fixture
def real_transcripts(shared_dir: Path) -> Path:
    folder = shared_dir / "reference" / "transcripts" / "real"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent; pass --shared-dir DIR (the folder holding reference/transcripts/real)")
    return folder


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH pointing at an empty folder: no CANN tool can be found there."""
    folder = tmp_path / "empty-path"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("ASCEND_TOOLKIT_HOME", raising=False)
    return folder



# --- replay plumbing: a result folder built from a narrow checkpoint's ONNX Runtime outputs -----------------------
# These fixtures fabricate what an Ascend host would copy back - outputs in the ais_bench and legacy layouts, our
# own perf files, ATC consoles - from ONNX Runtime outputs of a width-4 VNet, so the replay judging code runs end
# to end here. They test the plumbing (discovery, matching, criteria, messages), never NPU correctness.

REPLAY_FIXTURES = FIXTURES / "ascend" / "replay"
NARROW = {"seed": 5, "layout": "upstream", "width": 4, "purpose": "replay plumbing"}
#: One scan whose lung covers tiles 0 and 1: two tiles, stems "0" and "1", one batch of 2.
REPLAY_TILES = ((0, 1),)


@dataclass
class NarrowSetup:
    """A one-scan normalised dataset with its tiles, a width-4 checkpoint, its ONNX exports by BN mode (cached
    exactly as the ``onnx_export`` fixture caches them, so inner gate sessions reuse them), and ONNX Runtime
    outputs: ``running`` (each tile alone) and ``batch2`` (both tiles as one batch, batch-statistics BN)."""

    dataset: Any
    weights: Path
    checkpoint: Any
    onnx: dict[str, Path]
    running: dict[str, np.ndarray]
    batch2: dict[str, np.ndarray]
    cache_root: Path

    @property
    def stems(self) -> list[str]:
        return [e.stem for e in self.dataset.manifest.entries]


@pytest.fixture(scope="session")
def narrow_setup(artifact_cache, tmp_path_factory) -> NarrowSetup:
    import torch

    from vnet_accept.ascend.references import reference_outputs
    from vnet_accept.data.tiles import TILE_SHAPE
    from vnet_accept.export.onnx_export import ExportOptions, export_onnx
    from vnet_accept.model.checkpoint import load_checkpoint, write_random_checkpoint
    from vnet_accept.results.synthetic import small_dataset

    dataset = small_dataset(tmp_path_factory.mktemp("replay-data"), tiles=REPLAY_TILES, seed=7)
    settings = {k: v for k, v in NARROW.items() if k != "purpose"}
    entry = artifact_cache.get_or_build("checkpoint", dict(NARROW, torch=torch.__version__),
                                        lambda d: write_random_checkpoint(d / "vnet_w4.pth.tar", **settings))
    weights = entry / "vnet_w4.pth.tar"
    checkpoint = load_checkpoint(weights)
    onnx = {}
    for mode in ("batch", "instance", "running"):
        options = ExportOptions(bn_mode=mode, opset=11, spatial=TILE_SHAPE)
        inputs = {"checkpoint_sha256": checkpoint.sha256, **options.cache_inputs()}

        def make(directory: Path, mode=mode, options=options) -> None:
            export_onnx(checkpoint.build_model(mode), directory / "vnet.onnx", options,
                        checkpoint_sha256=checkpoint.sha256)

        onnx[mode] = artifact_cache.get_or_build("onnx", inputs, make) / "vnet.onnx"
    stems = [e.stem for e in dataset.manifest.entries]
    running = reference_outputs(onnx["running"], dataset.manifest, [(s,) for s in stems], artifact_cache)
    batch2 = reference_outputs(onnx["batch"], dataset.manifest, [tuple(stems)], artifact_cache)
    return NarrowSetup(dataset, weights, checkpoint, onnx, running, batch2, artifact_cache.root)


def fp16(array: np.ndarray) -> np.ndarray:
    """What an fp16 output path does to a float32 value (a stand-in for ATC's precision, nothing more)."""
    return array.astype(np.float16).astype(np.float32)


def build_replay_folder(root: Path, setup: NarrowSetup, *, bs2: str = "running", bs2_index: int = 0,
                        manifest: str = "copy", atc: bool = True) -> Path:
    """A ``--npu-results`` folder: bs1 in the legacy layout (``bs1/result/dumpOutput_device0/<stem>_1.bin``, its
    perf file and info file), bs2 in the ais_bench layout (``result_bs2/<stem>_<bs2_index>.bin`` and its summary),
    a pure-inference summary for bs2 under ``perf/``, ATC consoles, and ``manifest.json`` (``copy``, ``wrong``:
    tile 1's sha256 changed, or ``none``). ``bs2`` is ``running`` or ``batch``: which ONNX Runtime outputs stand in
    for the bs2 OM."""
    import shutil

    from vnet_accept.results.layouts import output_relpath, write_output

    root.mkdir(parents=True)
    for stem, out in setup.running.items():
        write_output(root / "bs1" / "result", stem, fp16(out), "benchmark", device_id=0)
    (root / "bs1" / "vnet_prep_bin.info").write_text("".join(f"{i} ./prep_bin/{s}.bin 80 80\n"
                                                             for i, s in enumerate(setup.stems)))
    shutil.copy(REPLAY_FIXTURES / "perf_vision_batchsize_1_device_0.txt", root / "bs1" / "result")
    source = setup.running if bs2 == "running" else setup.batch2
    for stem, out in source.items():
        path = write_output(root / "result_bs2", stem, fp16(out), "ais_bench")
        if bs2_index != 0:
            path.rename(path.with_name(f"{stem}_{bs2_index}.bin"))
    assert output_relpath("0", "ais_bench") == Path("0_0.bin")
    shutil.copy(REPLAY_FIXTURES / "result_bs2_summary.json", root)
    shutil.copytree(REPLAY_FIXTURES / "perf", root / "perf")
    if atc:
        console = (FIXTURES / "ascend" / "atc_success_vnet_bs1.txt").read_text()
        for bs in (1, 2):
            (root / f"atc_bs{bs}.log").write_text(console + "ATC exit status 0\n")
    if manifest != "none":
        data = json.loads((setup.dataset.manifest.directory / "manifest.json").read_text())
        if manifest == "wrong":
            data["entries"][1]["sha256"] = "0" * 64
        (root / "manifest.json").write_text(json.dumps(data))
    return root


@pytest.fixture
def replay_folder(tmp_path: Path, narrow_setup: NarrowSetup) -> Callable[..., Path]:
    """``replay_folder(name, **kwargs)``: :func:`build_replay_folder` under this test's tmp_path."""
    return lambda name="npu-results", **kwargs: build_replay_folder(tmp_path / name, narrow_setup, **kwargs)


@dataclass
class InnerRun:
    """An inner ``pytest -m npu`` session on the gate's NPU criteria: its exit status, each test's outcome, the
    text of every failure and skip, and the gate report's criteria by id."""

    ret: int
    outcomes: dict[str, str]  # nodeid -> passed / failed / skipped
    texts: dict[str, str]  # nodeid -> failure text or skip reason
    criteria: dict[str, dict]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def text(self) -> str:
        return "\n".join(self.texts.values())

    def has_line(self, pattern: str) -> bool:
        from fnmatch import fnmatch

        return any(fnmatch(line, pattern) for line in self.text().splitlines())


class _Outcomes:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.texts: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
            self.texts[report.nodeid] = report.longreprtext
        elif report.skipped and self.outcomes.get(report.nodeid) != "failed":
            self.outcomes[report.nodeid] = "skipped"
            self.texts[report.nodeid] = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        elif report.when == "call" and report.nodeid not in self.outcomes:
            self.outcomes[report.nodeid] = "passed"


@pytest.fixture
def inner_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., InnerRun]:
    """``inner_gate(*args)``: ``pytest -m npu`` on vnet_accept/checks/test_npu.py with ``args``, in this process.

    Run through ``pytest.main``, not ``pytester``: pytester restores ``sys.modules`` after an inner run, and a C
    extension first imported inside it (torch, onnx, SimpleITK …) then cannot be imported again by a later test
    (onnx aborts: "refusing to add duplicate key"). Here what the inner session imports stays imported."""
    checks = Path(__file__).resolve().parents[2] / "vnet_accept" / "checks" / "test_npu.py"

    def run(*args: str) -> InnerRun:
        work = tmp_path / f"inner{len(list(tmp_path.glob('inner*')))}"
        work.mkdir()
        monkeypatch.chdir(work)
        collector = _Outcomes()
        ret = pytest.main(["-m", "npu", "-p", "no:cacheprovider", "-q", "-rs", "--rootdir", str(work),
                           "--gate-report", str(work / "report"), *args, str(checks)], plugins=[collector])
        report = work / "report" / "gate-report.json"
        criteria = {c["id"]: c for c in json.loads(report.read_text())["criteria"]} if report.is_file() else {}
        return InnerRun(int(ret), collector.outcomes, collector.texts, criteria)

    return run


@pytest.fixture
def gate_on(inner_gate, narrow_setup: NarrowSetup) -> Callable[..., InnerRun]:
    """``gate_on(results, *extra)``: :func:`inner_gate` judging ``results`` (None: run the tools) with the narrow
    setup's weights and dataset."""

    def run(results: Path | None, *extra: str) -> InnerRun:
        where = ["--npu-results", str(results)] if results is not None else []
        return inner_gate(*where, "--vnet-weights", str(narrow_setup.weights),
                          "--luna16-root", str(narrow_setup.dataset.root),
                          "--test-uids", str(narrow_setup.dataset.uid_file),
                          "--vnet-cache-dir", str(narrow_setup.cache_root), "--tolerance-pp", "100", *extra)

    return run
