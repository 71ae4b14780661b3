"""Fixtures of the accuracy chain: export -> preprocess -> infer -> post-process, each run computed once.

* ``accuracy_reference`` - the rule in force (``--reference-error``, ``--tolerance-pp``);
* ``accuracy_dataset`` - the prepared tiles under test (:class:`AccuracyDataset`: manifest, normalised root,
  UID list, synthetic or not);
* ``accuracy_runs`` - :class:`AccuracyRuns`, the session's store of inference runs and post-processing
  reports. CPU time is the budget (one full tile costs 1.5-2.5 s on two cores), so every run is made once, on first
  use, and the consistency checks share them: the chain (``--backend`` at ``--infer-batch-size`` over every
  tile), the first scan's tiles at batch 1, and the same tiles through the other CPU backend. With ``--backend
  auto`` on a CPU those two batch-1 runs come first and their timing decides the chain's backend;
* ``accuracy_backend`` - the chain's backend (``--backend``, or what ``auto`` decided).

The chain streams its outputs straight into the post-processor (1,072 LUNA16 tiles would be 3.5 GB of files
written and read back); ``--dump-outputs DIR`` writes them in the ``ais_bench`` layout instead and judges that
folder. The checks that are about files (the printed line, the three layouts) run on the first scan's outputs,
written as a complete result folder with its own manifest (:meth:`AccuracyRuns.check_folder`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Tiles of the batch-invariance and backend-agreement checks: the first scan's (at most one volume).
CHECK_TILES = 8
#: The batch size batch invariance compares batch 1 with (SPEC §6: the port reports bs1 and bs16).
INVARIANCE_BATCH = 16
#: Criterion source names of the built-in backends (``accuracy.error_rate.<source>``).
SOURCE_NAMES = {"ort-cpu": "onnxrt", "torch-cpu": "torch-cpu"}


def source_name(backend: str) -> str:
    return SOURCE_NAMES.get(backend, backend)


@dataclass(frozen=True)
class AccuracyDataset:
    """The tiles under test: ``manifest`` (prepared ``.bin`` tiles), ``root`` (normalised layout: masks, CT),
    ``uids`` (the UID list used) and whether it is the synthetic stand-in."""

    manifest: Any
    root: Path
    uids: Any
    synthetic: bool

    def describe(self) -> str:
        kind = "synthetic LUNA16-like dataset" if self.synthetic else "LUNA16"
        # The synthetic dataset's UID file lies deep in the artifact cache: its path says nothing to a reader.
        uids = "its own UID list" if self.synthetic else self.uids.describe()
        return f"{kind}, {len(self.manifest)} tiles of {len(self.manifest.uids)} scans ({uids})"

    def check_entries(self) -> list:
        """The first scan's tiles (at most :data:`CHECK_TILES`)."""
        first = self.manifest.entries[0].uid
        return [e for e in self.manifest.entries if e.uid == first][:CHECK_TILES]


#: How a basis names the gate's own export (the ONNX backends' file when no ``--onnx`` is given or it cannot run).
REFERENCE_EXPORT = "the reference export (no --onnx given)"


@dataclass(frozen=True)
class ChainOnnx:
    """The submitted ONNX as the chain's ONNX backends run it: ``path`` and the ``label`` every basis names."""

    path: Path
    label: str


def chain_onnx(onnx_under_test: Any, batch_size: int) -> tuple[ChainOnnx | None, str]:
    """``(the submitted file for the chain, "")``, or ``(None, how a basis names the reference export)`` when no
    ``--onnx`` was given or the file cannot take the chain's tiles (its names, tile shape or a fixed batch smaller
    than ``batch_size``); the file itself is judged by the export, parity and invariance criteria either way."""
    from vnet_accept.data.tiles import TILE_SHAPE
    from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME

    if onnx_under_test is None or not onnx_under_test.submitted:
        return None, ""
    u, problems = onnx_under_test, []
    if u.input_name != ONNX_INPUT_NAME or u.output_name != ONNX_OUTPUT_NAME:
        problems.append(f"its tensors are {u.input_name!r} -> {u.output_name!r}, not {ONNX_INPUT_NAME!r} -> "
                        f"{ONNX_OUTPUT_NAME!r}")
    if u.spatial is not None and tuple(u.spatial) != tuple(TILE_SHAPE):
        problems.append(f"its input is {u.spatial}, not a {TILE_SHAPE} tile")
    if u.batch_dim is not None and u.batch_dim < batch_size:
        problems.append(f"its batch is fixed at {u.batch_dim}, the chain runs batches of {batch_size}")
    if problems:
        return None, f"the reference export (the submitted {u.path} cannot run the chain: {'; '.join(problems)})"
    return ChainOnnx(u.path, f"the submitted ONNX {u.path} (sha256 {u.sha256[:12]}…)"), ""


@dataclass
class Run:
    """One inference run: its runner's description, batch size, the entries run, and where the outputs are
    (``out_dir`` in ``layout``) or the outputs themselves (``arrays``, (N, 64, 80, 80, 2) float32)."""

    backend: str
    basis: str
    batch_size: int
    entries: list
    inference: Any
    out_dir: Path | None = None
    layout: str | None = None
    arrays: np.ndarray | None = None


class AccuracyRuns:
    """Inference runs and post-processing reports of the session, each computed once (see the module docs)."""

    def __init__(self, dataset: AccuracyDataset, backend: str | Callable[[AccuracyRuns], str], batch_size: int,
                 bn_mode: str, make_runner: Callable[[str], Any], workdir: Path, reference: Any,
                 dump_dir: Path | None = None, config: Any = None, label: str = "accuracy chain",
                 onnx: ChainOnnx | None = None, reference_note: str = "") -> None:
        self.dataset, self.batch_size, self.bn_mode = dataset, batch_size, bn_mode
        self.onnx = onnx  # the submitted ONNX the ONNX backends run, or None: the gate's export
        self.reference_note = reference_note or REFERENCE_EXPORT
        self.make_runner, self.workdir, self.reference, self.dump_dir = make_runner, workdir, reference, dump_dir
        self.config, self.label = config, label  # the pytest config the progress lines are written through
        self._backend = backend  # a name, or a callable deciding it on first use (``--backend auto``)
        self._runs: dict[tuple, Run] = {}
        self._reports: dict[tuple, Any] = {}

    @property
    def backend(self) -> str:
        """The chain's backend; with ``--backend auto`` on a CPU, decided on first use by timing the first scan's
        tiles through both CPU backends - runs the consistency checks need anyway (:func:`time_cpu_backends`)."""
        if callable(self._backend):
            self._backend = self._backend(self)
        return self._backend

    def time_cpu_backends(self, backends: Sequence[str]) -> dict[str, list[float]]:
        """Seconds per tile of each backend over the first scan's tiles at batch 1 (kept: the batch-invariance and
        backend-agreement checks compare exactly these runs), for :func:`select_backend`'s decision."""
        entries = self.dataset.check_entries()
        times = {}
        for backend in backends:
            run = self.in_memory(backend, 1, entries)
            times[backend] = [run.inference.backend_s / max(1, len(entries))]
        return times

    def _infer(self, runner: Any, what: str, entries: Sequence, batch_size: int, **kwargs: Any):
        """:func:`~vnet_accept.results.inference.run_inference` with a progress line: tiles done, and the elapsed
        time while a batch computes (a batch of 16 full tiles takes tens of seconds on two cores)."""
        from vnet_accept.plugin.progress import progress
        from vnet_accept.results.inference import run_inference

        with progress(self.config, f"{self.label}: {what}, {runner.name} bs{batch_size}", total=len(entries),
                      unit="tile") as bar, bar.running(f"{runner.name} on {min(batch_size, len(entries))} "
                                                       f"tile{'s' if min(batch_size, len(entries)) != 1 else ''}"):
            return run_inference(runner, self.dataset.manifest, entries=entries, batch_size=batch_size,
                                 progress=lambda n: bar.update(n), **kwargs)

    def basis(self, runner: Any) -> str:
        """What a run's numbers are of: the runner, and for an ONNX backend the file it ran."""
        from vnet_accept.runners.registry import get_backend

        if get_backend(runner.name).needs != "onnx":
            return runner.describe()
        return f"{runner.describe()} on {self.onnx.label if self.onnx else self.reference_note}"

    def onnx_artifacts(self, *runs: Run) -> list[tuple[str, Path]]:
        """``("onnx", path)`` of the submitted file when one of ``runs`` ran it, for the criterion's artifacts."""
        from vnet_accept.runners.registry import get_backend

        if self.onnx is None or not any(get_backend(r.backend).needs == "onnx" for r in runs):
            return []
        return [("onnx", self.onnx.path)]

    @property
    def other_backend(self) -> str:
        """The CPU backend the chain's backend is checked against (PyTorch for ONNX Runtime, else ORT)."""
        return "torch-cpu" if self.backend == "ort-cpu" else "ort-cpu"

    def chain(self) -> Run:
        """``--backend`` at ``--infer-batch-size`` over every tile: streamed into the post-processor (the run keeps
        the first scan's outputs for the checks), or written as ais_bench writes into ``--dump-outputs``."""
        key = ("chain",)
        if key not in self._runs:
            manifest = self.dataset.manifest
            runner = self.make_runner(self.backend)
            if self.dump_dir is not None:
                report = self._infer(runner, "every tile", manifest.entries, self.batch_size, out_dir=self.dump_dir,
                                     layout="ais_bench")
                self._runs[key] = Run(self.backend, self.basis(runner), self.batch_size, list(manifest.entries),
                                      report, self.dump_dir, "ais_bench")
            else:
                self._runs[key] = self._streamed_chain(runner)
        return self._runs[key]

    def _streamed_chain(self, runner: Any) -> Run:
        import time

        from vnet_accept.metrics.accuracy import AccuracyAccumulator
        from vnet_accept.metrics.masks import MaskSource
        from vnet_accept.results.postprocess import report_from_stream

        manifest, checks = self.dataset.manifest, self.dataset.check_entries()
        wanted = {e.stem for e in checks}
        kept: dict[str, np.ndarray] = {}
        start = time.perf_counter()
        masks = MaskSource(self.dataset.root, verify_checksum=False)  # tile counts are checked against the manifest
        try:
            masks.prefetch(list(manifest.uids))
            accumulator = AccuracyAccumulator(masks, keep_predictions=True)

            def sink(batch: Sequence, outputs: np.ndarray) -> None:
                accumulator.add_batch([e.key for e in batch], outputs)
                kept.update((e.stem, o.copy()) for e, o in zip(batch, outputs) if e.stem in wanted)

            inference = self._infer(runner, "every tile, scored as it streams", manifest.entries, self.batch_size,
                                    sink=sink)
            self._reports[("streamed",)] = report_from_stream(accumulator, masks, manifest, self.reference,
                                                              time.perf_counter() - start)
        finally:
            masks.close()
        return Run(self.backend, self.basis(runner), self.batch_size, checks, inference,
                   arrays=np.stack([kept[e.stem] for e in checks]))

    def check_folder(self) -> tuple[Path, Any]:
        """The first scan's chain outputs as a complete ais_bench result folder, with the manifest of that scan's
        tiles (prepared again, alone): ``(folder, manifest)``, for the checks that are about files."""
        key = ("check_folder",)
        if key not in self._reports:
            from vnet_accept.data.discovery import discover
            from vnet_accept.data.prepare import preprocess_dataset
            from vnet_accept.data.uids import UidList
            from vnet_accept.results.layouts import write_output

            entries = self.dataset.check_entries()
            uid = entries[0].uid
            prep = self.workdir / "check_prep"
            manifest = preprocess_dataset(discover(self.dataset.root).require_normalized(),
                                          UidList((uid,), f"the first scan of {self.dataset.uids.source}"), prep,
                                          info_path=self.workdir / "check_prep.info")
            if sorted(e.key for e in manifest.entries) != sorted(e.key for e in entries):
                raise AssertionError(f"preparing scan {uid} alone gave other tiles than the full preprocess: "
                                     f"{[e.key for e in manifest.entries]} vs {[e.key for e in entries]}")
            folder = self.workdir / "check_ais_bench"
            for e, output in zip(entries, self.outputs(self.chain(), entries)):
                write_output(folder, manifest.entry(e.uid, e.tile).stem, output, "ais_bench")
            self._reports[key] = (folder, manifest)
        return self._reports[key]

    def in_memory(self, backend: str, batch_size: int, entries: Sequence) -> Run:
        """``entries`` through ``backend`` at ``batch_size``, outputs kept in memory (a few tiles only)."""
        key = ("memory", backend, batch_size, tuple(e.stem for e in entries))
        if key not in self._runs:
            collected: list[np.ndarray] = []
            runner = self.make_runner(backend)
            report = self._infer(runner, f"the first scan's {len(entries)} tiles", entries, batch_size,
                                 sink=lambda _batch, outputs: collected.append(outputs))
            self._runs[key] = Run(backend, self.basis(runner), batch_size, list(entries), report,
                                  arrays=np.concatenate(collected))
        return self._runs[key]

    def outputs(self, run: Run, entries: Sequence) -> np.ndarray:
        """The outputs of ``entries`` from ``run``: (N, 64, 80, 80, 2) float32."""
        if run.arrays is not None:
            position = {e.stem: i for i, e in enumerate(run.entries)}
            return run.arrays[[position[e.stem] for e in entries]]
        from vnet_accept.results.layouts import output_relpath, read_output

        return np.stack([read_output(run.out_dir / output_relpath(e.stem, run.layout)) for e in entries])

    def batched_and_alone(self, entries: Sequence) -> tuple[Run, Run]:
        """Runs holding ``entries`` computed inside a batch of 16 (as the first batch of the manifest) and one at a
        time, reusing the chain where its batch size is one of the two."""
        if self.batch_size == INVARIANCE_BATCH:
            batched = self.chain()
        else:
            first = list(self.dataset.manifest.entries[:INVARIANCE_BATCH])
            batched = self.in_memory(self.backend, INVARIANCE_BATCH, first)
        return batched, self.alone(entries)

    def alone(self, entries: Sequence) -> Run:
        """A run holding ``entries`` computed one at a time: the chain at batch 1, else a run of its own."""
        return self.chain() if self.batch_size == 1 else self.in_memory(self.backend, 1, entries)

    def postprocess(self, folder: Path, layout: str | None = None, keep_predictions: bool = False,
                    manifest: Any = None):
        """The post-processing report of a result folder (memoised by folder, layout and kept predictions);
        ``manifest`` defaults to the dataset's (then the UID list must name the same scans)."""
        key = (str(folder), layout, keep_predictions)
        if key not in self._reports:
            from vnet_accept.results.postprocess import postprocess_results

            own = manifest is None
            self._reports[key] = postprocess_results(folder, luna16_root=self.dataset.root,
                                                     manifest=self.dataset.manifest if own else manifest,
                                                     uids=self.dataset.uids if own else None,
                                                     layout=layout, reference=self.reference,
                                                     keep_predictions=keep_predictions)
        return self._reports[key]

    def chain_report(self):
        """The chain's post-processing report: of the dumped folder, or of the streamed outputs."""
        run = self.chain()
        if run.out_dir is not None:
            return self.postprocess(run.out_dir, keep_predictions=True)
        return self._reports[("streamed",)]

    def score(self, entries: Sequence, outputs: np.ndarray) -> dict[tuple[str, int], int]:
        """``{(uid, tile): incorrect}`` of ``outputs`` (N, 64, 80, 80, 2) for ``entries``."""
        from vnet_accept.metrics.accuracy import AccuracyAccumulator
        from vnet_accept.metrics.masks import MaskSource

        with MaskSource(self.dataset.root) as masks:
            acc = AccuracyAccumulator(masks, keep_predictions=False)
            acc.add_batch([e.key for e in entries], outputs)
        return acc.result(resamples=1).counts_by_tile()


@pytest.fixture(scope="session")
def accuracy_reference(gate_options):
    from vnet_accept.reference import AccuracyReference

    return AccuracyReference(gate_options.reference_error, gate_options.tolerance_pp)


@pytest.fixture(scope="session")
def accuracy_backend(accuracy_runs) -> str:
    """The accuracy chain's backend: ``--backend``, or what ``auto`` decided for this session (see
    :func:`accuracy_runs`)."""
    return accuracy_runs.backend


def _backend_resolver(gate_options: Any, artifact_cache: Any, vnet_model_of: Callable[[], Any],
                      onnx_of: Callable[[], Any]) -> Callable[[AccuracyRuns], str]:
    """``--backend`` checked against the registry (a usage error lists the known backends); ``auto`` lets
    :func:`vnet_accept.runners.backend_choice.select_backend` decide: the GPU if usable, else the cached decision
    for this machine, else the CPU backend that ran the first scan's tiles faster (timed on the runs the checks
    need anyway: no benchmark, no export of its own)."""

    def resolve(runs: AccuracyRuns) -> str:
        from vnet_accept.errors import UsageError
        from vnet_accept.runners.backend_choice import select_backend
        from vnet_accept.runners.registry import get_backend

        try:
            name = gate_options.backend
            if name == "auto":
                name = select_backend("auto", bn_mode=gate_options.bn_mode, cache=artifact_cache,
                                      model=vnet_model_of(), onnx=onnx_of,
                                      benchmark=lambda *_args, **_kw: runs.time_cpu_backends(("torch-cpu", "ort-cpu"))
                                      ).backend
            return get_backend(name).name
        except UsageError as exc:
            raise pytest.UsageError(f"--backend: {exc}") from None

    return resolve


@pytest.fixture(scope="session")
def accuracy_dataset(gate_options, prepared_tiles, normalized_dataset, test_uids) -> AccuracyDataset:
    return AccuracyDataset(prepared_tiles, Path(normalized_dataset), test_uids, not gate_options.luna16_root)


@pytest.fixture(scope="session")
def accuracy_runs(accuracy_dataset, gate_options, onnx_export, vnet_checkpoint, artifact_cache,
                  accuracy_reference, tmp_path_factory, pytestconfig, request) -> AccuracyRuns:
    from vnet_accept.runners.registry import create_runner, get_backend

    bn_mode = gate_options.bn_mode
    models: dict[str, Any] = {}
    submitted = request.getfixturevalue("onnx_under_test") if gate_options.onnx else None
    onnx, reference_note = chain_onnx(submitted, max(gate_options.infer_batch_size, INVARIANCE_BATCH))

    def make_runner(backend: str):
        if get_backend(backend).needs == "onnx":
            if onnx is not None:  # the file being filed, in the BN semantics it implements
                return create_runner(backend, onnx=onnx.path)
            return create_runner(backend, onnx=onnx_export(bn_mode), bn_mode=bn_mode)
        if "model" not in models:
            models["model"] = vnet_checkpoint.build_model(bn_mode)
        return create_runner(backend, model=models["model"], bn_mode=bn_mode)

    dump = Path(gate_options.dump_outputs) if gate_options.dump_outputs else None
    backend = _backend_resolver(gate_options, artifact_cache, lambda: request.getfixturevalue("vnet_model"),
                                lambda: onnx_export(bn_mode))
    runs = AccuracyRuns(accuracy_dataset, backend, gate_options.infer_batch_size, bn_mode, make_runner,
                        tmp_path_factory.mktemp("accuracy"), accuracy_reference, dump_dir=dump, config=pytestconfig,
                        onnx=onnx, reference_note=reference_note)
    if gate_options.backend != "auto":
        runs.backend  # noqa: B018 - an unknown --backend is a usage error now, before any run
    return runs


@pytest.fixture(scope="session")
def accuracy_artifact_dir(gate_options, tmp_path_factory) -> Path:
    """Where pictures' data (the worst volume's ``.npz``) go: next to the gate report, else pytest's tmp dir."""
    if gate_options.gate_report:
        path = Path(gate_options.gate_report)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("accuracy-artifacts")
