"""ONNX Runtime reference outputs for the tiles an OM ran, in the company the OM ran them.

A batch-statistics ONNX (the port's training-form BatchNormalization) gives a tile a different output in every
batch, so its reference must be computed on the very batch the OM computed: :func:`reference_groups` takes the
OM run's :class:`~vnet_accept.ascend.results_folder.BatchPlan` for such a graph, and one tile at a time for the
batch-invariant ones (``running``, ``instance``). Outputs are cached in the artifact cache by the ONNX's sha256,
the inputs' sha256 in batch order and the ONNX Runtime version, so the parity, BN-semantics and replay checks
compute each batch once per machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.errors import DataError

CACHE_NAMESPACE = "om-reference"
CACHE_VERSION = 1
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def onnx_sha256(path: Path) -> str:
    """sha256 of an ONNX file, remembered per (path, size, mtime) for the session (a full VNet is 180 MB)."""
    from vnet_accept.io_utils import sha256_file

    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = sha256_file(path)
    return _SHA_MEMO[key]


def graph_bn_mode(onnx: Path) -> str | None:
    """The BN semantics the ONNX graph implements (metadata of our exports, else read from the graph)."""
    from vnet_accept.runners.onnxrt import OnnxRuntimeRunner

    return OnnxRuntimeRunner(onnx).bn_mode  # reads the file only; no session is created


def reference_groups(stems: Sequence[str], bn_mode: str | None, plan: Any | None) -> list[tuple[str, ...]]:
    """How to run ``stems`` so that each gets the output the OM's company would give it: one at a time for a
    batch-invariant graph; for ``batch`` the complete batches of ``plan`` holding them (a tile in a padded batch,
    or one the plan does not place, is left out - its reference is unknowable)."""
    if bn_mode != "batch":
        return [(s,) for s in stems]
    if plan is None:
        raise DataError("a batch-statistics ONNX needs the OM run's batch composition (an ais_bench summary with "
                        "filesinfo, or the legacy tool's info file)")
    groups: list[tuple[str, ...]] = []
    complete = plan.complete_batches()
    for stem in stems:
        batch = next((b for b in complete if stem in b), None)
        if batch is not None and batch not in groups:
            groups.append(batch)
    return groups


def reference_outputs(onnx: Path, manifest: Any, groups: Sequence[Sequence[str]], cache: Any | None = None,
                      threads: int | None = None, progress: Callable[[int], Any] | None = None
                      ) -> dict[str, np.ndarray]:
    """``{stem: (64, 80, 80, 2) float32}``: ONNX Runtime on ``onnx``, each group of input stems as one batch;
    ``progress(n)`` is told the tiles of each group done (computed or read from the cache)."""
    from vnet_accept.runners.onnxrt import OnnxRuntimeRunner

    runner: OnnxRuntimeRunner | None = None
    outputs: dict[str, np.ndarray] = {}
    try:
        for group in groups:
            entries = [manifest.entry_for_stem(s) for s in group]

            def compute(entries=entries) -> np.ndarray:
                nonlocal runner
                if runner is None:
                    runner = OnnxRuntimeRunner(onnx, threads=threads).activate()
                batch = np.stack([manifest.read_input(e) for e in entries])[:, None]
                from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME

                return runner.infer({ONNX_INPUT_NAME: np.ascontiguousarray(batch)})[ONNX_OUTPUT_NAME]

            if cache is None:
                arrays = compute()
            else:
                arrays = _cached(cache, onnx, entries, compute)
            for e, array in zip(entries, arrays):
                outputs[e.stem] = np.asarray(array, dtype=np.float32)
            if progress is not None:
                progress(len(entries))
    finally:
        if runner is not None:
            runner.deactivate()
    return outputs


def _cached(cache: Any, onnx: Path, entries: list, compute) -> np.ndarray:
    import onnxruntime

    inputs = {"version": CACHE_VERSION, "onnx_sha256": onnx_sha256(onnx), "inputs_sha256": [e.sha256 for e in entries],
              "onnxruntime": onnxruntime.__version__}

    def build(directory: Path) -> None:
        np.save(directory / "outputs.npy", compute(), allow_pickle=False)

    entry = cache.get_or_build(CACHE_NAMESPACE, inputs, build)
    return np.load(entry / "outputs.npy", allow_pickle=False)
