"""Fixtures of the accuracy chain: export -> preprocess -> infer -> post-process, each run computed once.

* ``accuracy_reference`` - the rule in force (``--reference-error``, ``--tolerance-pp``);
* ``accuracy_dataset`` - the prepared tiles under test (:class:`AccuracyDataset`: manifest, normalised root,
  UID list, synthetic or not);
* ``accuracy_runs`` - :class:`AccuracyRuns`, the session's store of inference runs and post-processing
  reports. CPU time is the budget (one full tile costs ~5 s on two cores), so every run is made once, on first
  use, and the consistency checks share them: the chain (``--backend`` at ``--infer-batch-size`` over every
  tile, written in the ``ais_bench`` layout), the first scan's tiles at batch 1, and the same tiles through the
  other CPU backend.
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
        return f"{kind}, {len(self.manifest)} tiles of {len(self.manifest.uids)} scans ({self.uids.describe()})"

    def check_entries(self) -> list:
        """The first scan's tiles (at most :data:`CHECK_TILES`)."""
        first = self.manifest.entries[0].uid
        return [e for e in self.manifest.entries if e.uid == first][:CHECK_TILES]


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

    def __init__(self, dataset: AccuracyDataset, backend: str, batch_size: int, bn_mode: str,
                 make_runner: Callable[[str], Any], workdir: Path, reference: Any) -> None:
        self.dataset, self.backend, self.batch_size, self.bn_mode = dataset, backend, batch_size, bn_mode
        self.make_runner, self.workdir, self.reference = make_runner, workdir, reference
        self._runs: dict[tuple, Run] = {}
        self._reports: dict[tuple, Any] = {}

    @property
    def other_backend(self) -> str:
        """The CPU backend the chain's backend is checked against (PyTorch for ONNX Runtime, else ORT)."""
        return "torch-cpu" if self.backend == "ort-cpu" else "ort-cpu"

    def chain(self) -> Run:
        """``--backend`` at ``--infer-batch-size`` over every tile, written as ais_bench writes."""
        key = ("chain",)
        if key not in self._runs:
            from vnet_accept.results.inference import run_inference

            out = self.workdir / f"{self.backend}_bs{self.batch_size}"
            runner = self.make_runner(self.backend)
            report = run_inference(runner, self.dataset.manifest, out, layout="ais_bench", batch_size=self.batch_size,
                                   progress=False)
            self._runs[key] = Run(self.backend, runner.describe(), self.batch_size, list(self.dataset.manifest.entries),
                                  report, out, "ais_bench")
        return self._runs[key]

    def in_memory(self, backend: str, batch_size: int, entries: Sequence) -> Run:
        """``entries`` through ``backend`` at ``batch_size``, outputs kept in memory (a few tiles only)."""
        key = ("memory", backend, batch_size, tuple(e.stem for e in entries))
        if key not in self._runs:
            from vnet_accept.results.inference import run_inference

            collected: list[np.ndarray] = []
            runner = self.make_runner(backend)
            report = run_inference(runner, self.dataset.manifest, None, entries=entries, batch_size=batch_size,
                                   sink=lambda _batch, outputs: collected.append(outputs), progress=False)
            self._runs[key] = Run(backend, runner.describe(), batch_size, list(entries), report,
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
        alone = self.chain() if self.batch_size == 1 else self.in_memory(self.backend, 1, entries)
        return batched, alone

    def postprocess(self, folder: Path, layout: str | None = None, keep_predictions: bool = False):
        """The post-processing report of a result folder (memoised by folder, layout and kept predictions)."""
        key = (str(folder), layout, keep_predictions)
        if key not in self._reports:
            from vnet_accept.results.postprocess import postprocess_results

            self._reports[key] = postprocess_results(folder, luna16_root=self.dataset.root,
                                                     manifest=self.dataset.manifest, uids=self.dataset.uids,
                                                     layout=layout, reference=self.reference,
                                                     keep_predictions=keep_predictions)
        return self._reports[key]

    def chain_report(self):
        return self.postprocess(self.chain().out_dir, keep_predictions=True)

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
def accuracy_backend(gate_options, artifact_cache) -> str:
    """``--backend``, checked against the registry (a usage error lists the known backends); ``auto`` lets
    :func:`vnet_accept.runners.backend_choice.select_backend` decide (the GPU if usable, else the faster CPU
    backend, measured once per machine)."""
    from vnet_accept.errors import UsageError
    from vnet_accept.runners.registry import get_backend

    try:
        name = gate_options.backend
        if name == "auto":
            from vnet_accept.runners.backend_choice import select_backend

            name = select_backend("auto", bn_mode=gate_options.bn_mode, cache=artifact_cache).backend
        return get_backend(name).name
    except UsageError as exc:
        raise pytest.UsageError(f"--backend: {exc}") from None


@pytest.fixture(scope="session")
def accuracy_dataset(gate_options, prepared_tiles, normalized_dataset, test_uids) -> AccuracyDataset:
    return AccuracyDataset(prepared_tiles, Path(normalized_dataset), test_uids, not gate_options.luna16_root)


@pytest.fixture(scope="session")
def accuracy_runs(accuracy_dataset, accuracy_backend, gate_options, onnx_export, vnet_checkpoint,
                  accuracy_reference, tmp_path_factory) -> AccuracyRuns:
    from vnet_accept.runners.registry import create_runner, get_backend

    bn_mode = gate_options.bn_mode
    models: dict[str, Any] = {}

    def make_runner(backend: str):
        if get_backend(backend).needs == "onnx":
            return create_runner(backend, onnx=onnx_export(bn_mode), bn_mode=bn_mode)
        if "model" not in models:
            models["model"] = vnet_checkpoint.build_model(bn_mode)
        return create_runner(backend, model=models["model"], bn_mode=bn_mode)

    return AccuracyRuns(accuracy_dataset, accuracy_backend, gate_options.infer_batch_size, bn_mode, make_runner,
                        tmp_path_factory.mktemp("accuracy"), accuracy_reference)


@pytest.fixture(scope="session")
def accuracy_artifact_dir(gate_options, tmp_path_factory) -> Path:
    """Where pictures' data (the worst volume's ``.npz``) go: next to the gate report, else pytest's tmp dir."""
    if gate_options.gate_report:
        path = Path(gate_options.gate_report)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("accuracy-artifacts")
