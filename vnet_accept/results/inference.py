"""The one inference loop, and batched inference over a prepared test set written as the tools write it (SPEC §4.3,
§5).

:func:`infer_stream` is the loop every inference pass goes through: batches ``(entries, (N, 1, D, H, W) float32)``
in, each run through a :class:`~vnet_accept.runners.base.Runner` (``output1`` = ``(N, D, H, W, 2)`` float32) and
handed to a ``sink(entries, outputs)``. Serial by default; ``overlap=True`` reads the next batch in a thread while
the device computes and runs the sink of the previous batch in another (the GPU's streaming pass). Its users:

* :func:`run_in_batches` - arrays in, arrays out (the parity and invariance checks);
* :func:`run_inference` - the tiles of a :class:`~vnet_accept.data.prepare.Manifest` written one output per tile in
  a layout of :mod:`vnet_accept.results.layouts` and/or handed to a sink, e.g. an
  :class:`~vnet_accept.metrics.accuracy.AccuracyAccumulator` (:func:`accumulator_sink`): streaming is one sink.

:func:`run_inference`:

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

Sink = Callable[[Sequence[Any], np.ndarray], None]


# --- the loop ------------------------------------------------------------------------------------------------------

@dataclass
class StreamStats:
    tiles: int = 0
    batches: int = 0
    seconds: float = 0.0  # wall clock of the whole pass
    input_wait_s: float = 0.0  # the loop waiting for the next batch's inputs
    infer_s: float = 0.0  # runner.infer calls (host-to-device, compute, device-to-host)
    sink_wait_s: float = 0.0  # the loop waiting for the sink to finish the previous batch (overlap only)

    @property
    def tiles_per_s(self) -> float:
        return self.tiles / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tiles_per_s": self.tiles_per_s}


def iter_batches(entries: Sequence[Any], read: Callable[[Any], np.ndarray] | None, batch_size: int,
                 prefetch: int = 0, load: Callable[[Any], np.ndarray] | None = None
                 ) -> Iterator[tuple[Any, np.ndarray]]:
    """``(entries, (N, 1, D, H, W) float32)`` batches in order, cut at multiples of ``batch_size``; ``read(entry)``
    gives one ``(D, H, W)`` input. With ``load``, ``entries`` are batches already cut and ``load(batch)`` gives
    the batch's inputs. With ``prefetch`` > 0, up to that many batches are read ahead in a thread."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if load is None:
        groups = [list(entries[i:i + batch_size]) for i in range(0, len(entries), batch_size)]

        def load(group: list[Any]) -> np.ndarray:
            return np.ascontiguousarray(np.stack([read(e) for e in group])[:, None], dtype=np.float32)
    else:
        groups = list(entries)

    if prefetch < 1:
        for group in groups:
            yield group, load(group)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vnet-read") as pool:
        pending: list[Future] = [pool.submit(load, g) for g in groups[:prefetch]]
        for i, group in enumerate(groups):
            batch = pending.pop(0).result()
            following = i + len(pending) + 1
            if following < len(groups):
                pending.append(pool.submit(load, groups[following]))
            yield group, batch


def infer_stream(runner: Runner, batches: Iterable[tuple[Sequence[Any], np.ndarray]], sink: Sink, *,
                 overlap: bool = False, input_name: str = INPUT_NAME, output_name: str = OUTPUT_NAME) -> StreamStats:
    """Run every batch through the active ``runner`` and hand ``(entries, outputs)`` to ``sink``, in order.

    With ``overlap`` the sink of batch k runs in a worker thread while batch k+1 is inferred; at most one sink call
    is pending, so memory stays at two batches of outputs. A sink exception stops the pass and propagates."""
    stats = StreamStats()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vnet-sink") as pool:
        pending: Future | None = None
        iterator = iter(batches)
        while True:
            t0 = time.perf_counter()
            try:
                entries, x = next(iterator)
            except StopIteration:
                break
            t1 = time.perf_counter()
            out = runner.infer({input_name: x})[output_name]
            t2 = time.perf_counter()
            if pending is not None:
                pending.result()
            t3 = time.perf_counter()
            if overlap:
                pending = pool.submit(sink, list(entries), out)
            else:
                sink(list(entries), out)
            stats.input_wait_s += t1 - t0
            stats.infer_s += t2 - t1
            stats.sink_wait_s += t3 - t2
            stats.tiles += len(entries)
            stats.batches += 1
        if pending is not None:
            pending.result()
    stats.seconds = time.perf_counter() - start
    return stats


def run_in_batches(runner: Runner, inputs: np.ndarray, batch_size: int, input_name: str = INPUT_NAME,
                   output_name: str = OUTPUT_NAME) -> np.ndarray:
    """Run ``inputs`` (N, 1, D, H, W) through an active runner ``batch_size`` samples at a time (the last batch
    may be smaller; nothing is padded) and return the concatenated ``output_name`` (N, D, H, W, 2)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(inputs) == 0:
        raise ValueError("no samples to run: inputs has batch size 0")
    parts: list[np.ndarray] = []
    batches = ((range(i, min(i + batch_size, len(inputs))), np.ascontiguousarray(inputs[i:i + batch_size]))
               for i in range(0, len(inputs), batch_size))
    infer_stream(runner, batches, lambda _entries, out: parts.append(out), input_name=input_name,
                 output_name=output_name)
    return np.concatenate(parts, axis=0)


def accumulator_sink(accumulator: Any) -> Sink:
    """A sink scoring manifest entries (anything with ``.key`` = (uid, tile)) into an ``AccuracyAccumulator``."""

    def sink(entries: Sequence[Any], outputs: np.ndarray) -> None:
        accumulator.add_batch([e.key for e in entries], outputs)

    return sink


# --- a prepared test set ---------------------------------------------------------------------------------------------


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
                  sink: Sink | None = None, progress: bool | Callable[[int], Any] = True, width: int | None = None,
                  overlap: bool = False) -> InferenceReport:
    """Run ``entries`` (default: every tile of ``manifest``, in its order) through ``runner`` (activated here if
    it is not active) and write outputs under ``out_dir`` in ``layout`` and/or pass them to ``sink``, through
    :func:`infer_stream` (``overlap``: read ahead and score behind while the device computes).

    ``width`` (the VNet base width, for GFLOP/s) defaults to what the runner reveals, else 16 (stated in the
    report's notes). ``progress``: a tqdm bar on stderr (True), none (False), or a callable given the number of
    tiles each batch finished (the gate's progress line). Returns the :class:`InferenceReport`; with ``out_dir`` it
    is also written there as ``vnet_accept_infer[_shardKofN].json``.
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
        to_run = []
        for batch in batches:
            paths = [out_dir / output_relpath(e.stem, layout, device_id) for e in batch] if out_dir else []
            if resume and paths and all(output_is_complete(p) for p in paths):
                report.tiles_resumed += len(batch)
                if sink is not None:
                    sink(batch, np.stack([read_output(p) for p in paths]))
                bar.update(len(batch))
            else:
                to_run.append(batch)

        def padded(batch: list[ManifestEntry]) -> np.ndarray:
            """The batch's inputs (N, 1, 64, 80, 80); a fixed batch axis gets copies of the last tile."""
            inputs = np.stack([manifest.read_input(e) for e in batch])[:, None]
            if fixed is not None and len(batch) < fixed:
                inputs = np.concatenate([inputs, np.repeat(inputs[-1:], fixed - len(batch), axis=0)])
                report.padded_tiles += fixed - len(batch)
            return np.ascontiguousarray(inputs, dtype=np.float32)

        def keep(batch: list[ManifestEntry], outputs: np.ndarray) -> None:
            expected = len(batch) if fixed is None else max(fixed, len(batch))
            if outputs.shape[1:] != OUTPUT_SHAPE or len(outputs) != expected:
                raise DataError(f"{runner.name} returned {OUTPUT_NAME} of shape {outputs.shape} for {expected} tiles; "
                                f"expected ({expected}, {', '.join(map(str, OUTPUT_SHAPE))}) - is this the VNet "
                                "export?")
            outputs = np.asarray(outputs[:len(batch)], dtype=np.float32)  # the padding's outputs are dropped
            if out_dir is not None:
                for entry, output in zip(batch, outputs):
                    write_output(out_dir, entry.stem, output, layout, device_id)
            if sink is not None:
                sink(batch, outputs)
            report.tiles_run += len(batch)
            report.batches_run += 1
            bar.update(len(batch))

        stream = iter_batches(to_run, None, 1, prefetch=2 if overlap else 0, load=padded)
        timed = len(runner.inference_times_s)
        infer_stream(runner, stream, keep, overlap=overlap)
        report.backend_s += sum(runner.inference_times_s[timed:])  # the backend call alone (Runner.infer)
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


class _CallbackBar:
    """``progress=callable``: the caller shows progress its own way (the gate's terminal writer under pytest's
    capture); ``callable(n)`` is called with the tiles each batch finished."""

    def __init__(self, callback: Callable[[int], Any]) -> None:
        self.callback = callback

    def update(self, n: int) -> None:
        self.callback(n)

    def close(self) -> None:
        pass


def _progress(total: int, name: str, enabled: bool | Callable[[int], Any]):
    if callable(enabled):
        return _CallbackBar(enabled)
    from tqdm import tqdm

    return tqdm(total=total, desc=f"infer {name}", unit="tile", file=sys.stderr, dynamic_ncols=True,
                disable=None if enabled else True)
