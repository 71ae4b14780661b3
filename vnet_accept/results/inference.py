"""Batched inference over a prepared test set, written as the inference tools write it (SPEC §4.3, §5).

:func:`run_inference` reads the tiles of a :class:`~vnet_accept.data.prepare.Manifest` (``(64, 80, 80)`` float32
each, batched as ``(N, 1, 64, 80, 80)``), runs them through any :class:`~vnet_accept.runners.base.Runner`
(``output1`` = ``(N, 64, 80, 80, 2)`` float32) and writes one output per tile in a layout of
:mod:`vnet_accept.results.layouts`, named after the tile's input stem. It can also hand every batch to a
``sink(entries, outputs)`` instead of (or besides) writing files - e.g. an
:class:`~vnet_accept.metrics.accuracy.AccuracyAccumulator` fed by a GPU pass.

* **Batches** are cut from the manifest order at multiples of the batch size, before sharding or resuming, so a
  tile is always computed in the same company (this matters for the batch-statistics BN of the port). The last
  batch may be smaller; it is run as it is. Only a model with a *fixed* batch axis gets a short batch padded
  with copies of its last tile (as ais_bench does), and the padding's outputs are dropped, never written.
* **Shards** ``K/N`` (1-based) split the batches into N contiguous runs of whole batches; N processes or hosts
  can write into one folder and together produce exactly what one run would.
* **Resume**: a batch whose outputs all exist whole (right size / valid ``.npy``) is skipped; a batch with some
  outputs missing is run again entirely (writes are atomic, so no file is ever half written).
* **Throughput**: tiles per second of wall time and of the backend call alone, and GFLOP/s from the counted
  FLOP per tile of the model's width (:func:`vnet_accept.model.flops.gflop_per_tile`; 285.75 GFLOP at 16).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept import __version__
from vnet_accept.data.prepare import Manifest, ManifestEntry
from vnet_accept.errors import DataError, UsageError
from vnet_accept.export.onnx_export import INPUT_NAME, OUTPUT_NAME
from vnet_accept.io_utils import atomic_write_json
from vnet_accept.results.layouts import (
    OUTPUT_SHAPE,
    check_layout,
    locate_results,
    output_is_complete,
    output_relpath,
    read_output,
    write_output,
)
from vnet_accept.runners.base import Runner

Sink = Callable[[Sequence[ManifestEntry], np.ndarray], None]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, ``"2/4"``)."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise UsageError(f"shard {self.index}/{self.count}: K/N needs 1 <= K <= N, e.g. --shard 1/4 … 4/4")

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            k, n = (int(part) for part in text.split("/"))
        except ValueError:
            raise UsageError(f"--shard {text!r}: expected K/N, e.g. 2/4 for the second of four shares") from None
        return cls(k, n)

    @property
    def record_name(self) -> str:
        suffix = f"_shard{self.index}of{self.count}" if self.count > 1 else ""
        return f"vnet_accept_infer{suffix}.json"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def plan_batches(entries: Sequence[ManifestEntry], batch_size: int) -> list[list[ManifestEntry]]:
    """Consecutive batches of ``batch_size`` tiles in the given order (the last may be shorter)."""
    if batch_size < 1:
        raise UsageError(f"batch size must be >= 1, got {batch_size}")
    return [list(entries[i:i + batch_size]) for i in range(0, len(entries), batch_size)]


def select_shard(batches: list[list[ManifestEntry]], shard: Shard) -> list[list[ManifestEntry]]:
    """The contiguous run of whole batches that belongs to ``shard`` (as even as possible)."""
    base, extra = divmod(len(batches), shard.count)
    start = (shard.index - 1) * base + min(shard.index - 1, extra)
    return batches[start:start + base + (1 if shard.index <= extra else 0)]


@dataclass
class InferenceReport:
    """What a run did and how fast: tiles planned for this shard, run, resumed; seconds; GFLOP/s."""

    backend: str
    layout: str | None
    batch_size: int
    shard: str
    out_dir: str | None
    tiles_planned: int = 0
    tiles_run: int = 0
    tiles_resumed: int = 0
    batches_run: int = 0
    padded_tiles: int = 0
    wall_s: float = 0.0
    backend_s: float = 0.0
    width: int | None = None
    gflop_per_tile: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def tiles_per_s(self) -> float:
        return self.tiles_run / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def backend_tiles_per_s(self) -> float:
        return self.tiles_run / self.backend_s if self.backend_s > 0 else float("nan")

    @property
    def gflop_per_s(self) -> float | None:
        """GFLOP/s of the backend call alone (the model's arithmetic, not file I/O)."""
        return self.backend_tiles_per_s * self.gflop_per_tile if self.gflop_per_tile else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tiles_per_s": self.tiles_per_s, "backend_tiles_per_s": self.backend_tiles_per_s,
                "gflop_per_s": self.gflop_per_s}

    def render(self) -> str:
        if not self.tiles_run:
            return f"ran 0 tiles ({self.tiles_resumed} already there, resumed)"
        flops = (f" = {self.gflop_per_s:.1f} GFLOP/s ({self.gflop_per_tile:.2f} GFLOP per tile, counted for width "
                 f"{self.width})" if self.gflop_per_s else "")
        return (f"ran {self.tiles_run} tiles in {self.batches_run} batches ({self.tiles_resumed} resumed) in "
                f"{self.wall_s:.1f} s: {self.tiles_per_s:.3g} tiles/s wall, {self.backend_tiles_per_s:.3g} tiles/s "
                f"in the backend{flops}")


def run_inference(runner: Runner, manifest: Manifest, out_dir: str | os.PathLike[str] | None = None, *,
                  layout: str | None = "ais_bench", batch_size: int = 1, shard: Shard = Shard(),
                  device_id: int = 0, entries: Sequence[ManifestEntry] | None = None, resume: bool = True,
                  sink: Sink | None = None, progress: bool = True, width: int | None = None) -> InferenceReport:
    """Run ``entries`` (default: every tile of ``manifest``, in its order) through ``runner`` (activated here if
    it is not active) and write outputs under ``out_dir`` in ``layout`` and/or pass them to ``sink``.

    ``width`` (the VNet base width, for GFLOP/s) defaults to what the runner reveals, else 16 (stated in the
    report's notes). Returns the :class:`InferenceReport`; with ``out_dir`` it is also written there as
    ``vnet_accept_infer[_shardKofN].json``.
    """
    from vnet_accept.model.flops import gflop_per_tile
    from vnet_accept.runners.registry import runner_width

    if out_dir is None and sink is None:
        raise UsageError("nothing would be kept: give an output folder or a sink")
    if out_dir is not None:
        out_dir = Path(out_dir)
        check_layout(layout)
        _check_existing_layout(out_dir, layout)
    entries = list(manifest.entries if entries is None else entries)
    batches = select_shard(plan_batches(entries, batch_size), shard)
    report = InferenceReport(runner.describe(), layout if out_dir is not None else None, batch_size, str(shard),
                             str(out_dir) if out_dir is not None else None)
    report.tiles_planned = sum(len(b) for b in batches)
    report.width = width or runner_width(runner)
    if report.width is None:
        report.width = 16
        report.notes.append("model width unknown (a foreign ONNX?): GFLOP/s assume the real VNet (width 16)")
    report.gflop_per_tile = gflop_per_tile(report.width)
    bar = _progress(report.tiles_planned, runner.name, progress)
    start = time.perf_counter()
    was_active = runner.is_active
    try:
        if not was_active:
            runner.activate()
        fixed = _fixed_batch(runner, batch_size)
        for batch in batches:
            paths = [out_dir / output_relpath(e.stem, layout, device_id) for e in batch] if out_dir else []
            if resume and paths and all(output_is_complete(p) for p in paths):
                report.tiles_resumed += len(batch)
                if sink is not None:
                    sink(batch, np.stack([read_output(p) for p in paths]))
                bar.update(len(batch))
                continue
            outputs = _infer_batch(runner, manifest, batch, fixed, report)
            for entry, output in zip(batch, outputs):
                if out_dir is not None:
                    write_output(out_dir, entry.stem, output, layout, device_id)
            if sink is not None:
                sink(batch, outputs)
            report.tiles_run += len(batch)
            report.batches_run += 1
            bar.update(len(batch))
    finally:
        if not was_active and runner.is_active:
            runner.deactivate()
        bar.close()
        report.wall_s = time.perf_counter() - start
    if out_dir is not None:
        model = getattr(runner, "model", None)
        record = {"created_by": f"vnet-accept {__version__}", "manifest": str(manifest.directory),
                  "model": str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__,
                  "device_id": device_id, "bn_mode": runner.bn_mode, "dtype": runner.dtype, **report.to_dict()}
        atomic_write_json(out_dir / shard.record_name, record)
    return report


def _infer_batch(runner: Runner, manifest: Manifest, batch: list[ManifestEntry], fixed: int | None,
                 report: InferenceReport) -> np.ndarray:
    inputs = np.stack([manifest.read_input(e) for e in batch])[:, None]  # (N, 1, 64, 80, 80)
    n = len(batch)
    if fixed is not None and n < fixed:
        inputs = np.concatenate([inputs, np.repeat(inputs[-1:], fixed - n, axis=0)])
        report.padded_tiles += fixed - n
    outputs = runner.infer({INPUT_NAME: np.ascontiguousarray(inputs)})[OUTPUT_NAME]
    report.backend_s += runner.last_inference_time_s or 0.0
    if outputs.shape[1:] != OUTPUT_SHAPE or len(outputs) != len(inputs):
        raise DataError(f"{runner.name} returned {OUTPUT_NAME} of shape {outputs.shape} for {len(inputs)} tiles; "
                        f"expected ({len(inputs)}, {', '.join(map(str, OUTPUT_SHAPE))}) - is this the VNet export?")
    return np.asarray(outputs[:n], dtype=np.float32)


def _fixed_batch(runner: Runner, batch_size: int) -> int | None:
    """The model's fixed batch size, or ``None`` for a dynamic batch axis; a larger ``batch_size`` is an error."""
    spec = runner.input_metadata().get(INPUT_NAME)
    if spec is None:
        raise UsageError(f"{runner.name}: the model has no input {INPUT_NAME} (inputs: "
                         f"{', '.join(runner.input_metadata())}); is this the VNet export?")
    fixed = spec.shape[0] if spec.shape else None
    if fixed is not None and batch_size > fixed:
        raise UsageError(f"{runner.name}: the model's batch axis is fixed at {fixed}; use --batch-size {fixed} "
                         "or less (shorter batches are padded), or export with a dynamic batch")
    return fixed


def _check_existing_layout(out_dir: Path, layout: str) -> None:
    if not out_dir.is_dir():
        return
    try:
        found = locate_results(out_dir, None)
    except DataError:
        return  # no outputs yet
    if found.layout != layout:
        raise DataError(f"{out_dir} already holds {found.layout} outputs ({found.how}); writing {layout} outputs "
                        "into it would mix two layouts - choose another -o or the same --layout")


def _progress(total: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"infer {name}", unit="tile", file=sys.stderr, dynamic_ncols=True,
                disable=None if enabled else True)
