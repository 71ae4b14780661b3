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
* **Provenance and resume**: the run record (``vnet_accept_infer[_shardKofN].json``) ties every output it lists
  to what made it: the sha256 of the model file (ONNX, OM) or of the PyTorch state dict, the backend, BN mode,
  dtype, batch size, layout and device id (``made_by``), and per output the tile's input sha256 from the manifest
  and the output file's own sha256 (``outputs``). It is written when the run starts (listing the tiles planned)
  and kept up to date as batches finish. A folder whose records say another model, backend, BN mode, batch size
  or tile inputs made its outputs, a record that cannot be read, or output files that no record accounts for are
  refused (:class:`DataError` naming the folder and the mismatch): outputs are never adopted. A batch is resumed
  only when each of its outputs is the file a matching record lists (same sha256); any other batch of the plan is
  run again entirely (writes are atomic, so no file is ever half written).
* **Throughput**: tiles per second of wall time and of the backend call alone, and GFLOP/s from the counted
  FLOP per tile of the model's width (:func:`vnet_accept.model.flops.gflop_per_tile`; 285.75 GFLOP at 16).
"""

from __future__ import annotations

import json
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
from vnet_accept.io_utils import atomic_write_json, ensure_dir, sha256_bytes, sha256_file
from vnet_accept.results.layouts import (
    OUTPUT_SHAPE,
    RUN_RECORD_RE,
    OutputFile,
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
    is also written there as ``vnet_accept_infer[_shardKofN].json``, the run record that ties every output to what
    made it.
    """
    from vnet_accept.model.flops import gflop_per_tile
    from vnet_accept.runners.registry import runner_width

    if out_dir is None and sink is None:
        raise UsageError("nothing would be kept: give an output folder or a sink")
    entries = list(manifest.entries if entries is None else entries)
    batches = select_shard(plan_batches(entries, batch_size), shard)
    ledger = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        check_layout(layout)
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"output folder {out_dir} is a file; pass -o with a folder (created if missing)")
        _check_existing_layout(out_dir, layout)
        made_by = {"model": model_identity(runner), "backend": runner.name, "bn_mode": runner.bn_mode,
                   "dtype": runner.dtype, "batch_size": batch_size, "layout": layout, "device_id": device_id}
        ledger = _Ledger(out_dir, shard, made_by, manifest, layout, device_id, [e for b in batches for e in b])
    report = InferenceReport(runner.describe(), layout if out_dir is not None else None, batch_size, str(shard),
                             str(out_dir) if out_dir is not None else None)
    report.tiles_planned = sum(len(b) for b in batches)
    report.width = width or runner_width(runner)
    if report.width is None:
        report.width = 16
        report.notes.append("model width unknown (a foreign ONNX?): GFLOP/s assume the real VNet (width 16)")
    report.gflop_per_tile = gflop_per_tile(report.width)
    record: dict[str, Any] = {}
    if ledger is not None:
        model = getattr(runner, "model", None)
        record = {"created_by": f"vnet-accept {__version__}", "manifest": str(manifest.directory),
                  "model": str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__,
                  "device_id": device_id, "bn_mode": runner.bn_mode, "dtype": runner.dtype}
    bar = _progress(report.tiles_planned, runner.name, progress)
    start = time.perf_counter()
    was_active = runner.is_active
    try:
        if not was_active:
            runner.activate()
        fixed = _fixed_batch(runner, batch_size)
        if ledger is not None:  # the model loaded and fits: from here on the folder says what it holds
            ledger.save(record, report, complete=False)
        to_run = []
        for batch in batches:
            if resume and ledger is not None and ledger.adopt(batch):
                report.tiles_resumed += len(batch)
                if sink is not None:
                    sink(batch, np.stack([read_output(ledger.path(e)) for e in batch]))
                bar.update(len(batch))
                ledger.save(record, report, complete=False, throttle=True)
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
            if ledger is not None:
                for entry, output in zip(batch, outputs):
                    ledger.written(entry, write_output(out_dir, entry.stem, output, layout, device_id))
            if sink is not None:
                sink(batch, outputs)
            report.tiles_run += len(batch)
            report.batches_run += 1
            bar.update(len(batch))
            if ledger is not None:
                ledger.save(record, report, complete=False, throttle=True)

        stream = iter_batches(to_run, None, 1, prefetch=2 if overlap else 0, load=padded)
        timed = len(runner.inference_times_s)
        infer_stream(runner, stream, keep, overlap=overlap)
        report.backend_s += sum(runner.inference_times_s[timed:])  # the backend call alone (Runner.infer)
    except BaseException:
        if ledger is not None and ledger.started:  # an interrupted run still vouches for what it wrote
            ledger.save(record, report, complete=False)
        raise
    finally:
        if not was_active and runner.is_active:
            runner.deactivate()
        bar.close()
        report.wall_s = time.perf_counter() - start
    if ledger is not None:
        ledger.save(record, report, complete=True)
    return report


def model_identity(runner: Runner) -> dict[str, Any]:
    """What model a runner runs, as content: the sha256 of its file (ONNX, OM) or bytes, or of its PyTorch state
    dict (:func:`~vnet_accept.export.onnx_export.state_dict_hash`); a runner that reveals neither is named."""
    model = getattr(runner, "model", None)
    if isinstance(model, (str, os.PathLike)) and Path(model).is_file():
        return {"kind": "file", "name": Path(model).name, "sha256": sha256_file(model)}
    if isinstance(model, bytes):
        return {"kind": "bytes", "sha256": sha256_bytes(model)}
    if model is not None and hasattr(model, "state_dict"):
        from vnet_accept.export.onnx_export import state_dict_hash

        return {"kind": "state_dict", "sha256": state_dict_hash(model)}
    return {"kind": "runner", "sha256": None, "name": f"{type(runner).__module__}.{type(runner).__qualname__}"}


#: The fields of ``made_by`` two runs must share for their outputs to live in one folder.
_MADE_BY_FIELDS = ("model", "backend", "bn_mode", "dtype", "batch_size", "layout", "device_id")
_RECORD_SAVE_INTERVAL_S = 2.0


class _Ledger:
    """The run records of an output folder: checks them against this run before anything is written, says which
    existing outputs may be resumed (verified by sha256), and keeps this run's record up to date."""

    def __init__(self, out_dir: Path, shard: Shard, made_by: dict[str, Any], manifest: Manifest, layout: str,
                 device_id: int, planned: list[ManifestEntry]) -> None:
        self.out_dir, self.shard, self.made_by, self.layout, self.device_id = out_dir, shard, made_by, layout, device_id
        self.record_path = out_dir / shard.record_name
        self.planned = {self.rel(e): e.sha256 for e in planned}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, dict[str, Any]] = {}  # relpath -> output entry of a matching record
        self._saved_at = 0.0
        self.started = False
        if out_dir.is_dir():
            self._check(manifest)

    def rel(self, entry: ManifestEntry) -> str:
        return output_relpath(entry.stem, self.layout, self.device_id).as_posix()

    def path(self, entry: ManifestEntry) -> Path:
        return self.out_dir / output_relpath(entry.stem, self.layout, self.device_id)

    # -- checking what is there --------------------------------------------------------------------------------
    def _check(self, manifest: Manifest) -> None:
        sha_by_stem = {e.stem: e for e in manifest.entries}
        accounted: set[str] = set()
        for path in sorted(p for p in self.out_dir.iterdir() if p.is_file() and RUN_RECORD_RE.match(p.name)):
            record = self._read(path)
            mismatch = self._mismatch(path, record, sha_by_stem)
            if mismatch:
                raise DataError(f"{self.out_dir} holds outputs made by another run: {mismatch}; vnet-accept infer "
                                "never adopts outputs made otherwise - choose another -o (or delete the folder) and "
                                "run again")
            for rel, item in record["outputs"].items():
                self.claims[rel] = item
            accounted |= set(record["outputs"]) | set(record["planned"])
        strays = [f for f in self._output_files() if f not in accounted]
        if strays:
            raise DataError(f"{self.out_dir} holds {len(strays)} output file(s) that no vnet-accept run record in it "
                            f"accounts for (e.g. {strays[0]}); vnet-accept infer never adopts outputs it did not "
                            "make - choose an empty -o, or remove them")

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{path} is not a readable run record ({exc}); the folder's outputs cannot be tied to "
                            "what made them - choose another -o (or delete the folder)") from None
        if not isinstance(record, dict) or not isinstance(record.get("made_by"), dict) or not isinstance(
                record.get("outputs"), dict):
            raise DataError(f"{path} does not say which model, backend, BN mode and batch size made the outputs "
                            "(written by an older vnet-accept, or edited); choose another -o (or delete the "
                            "folder) and run again")
        planned = record.setdefault("planned", {})
        if not isinstance(planned, dict) or not all(isinstance(v, dict) for v in record["outputs"].values()):
            raise DataError(f"{path} is damaged (its planned/outputs entries are not what vnet-accept writes); "
                            "choose another -o (or delete the folder) and run again")
        return record

    def _mismatch(self, path: Path, record: dict[str, Any], by_stem: dict[str, ManifestEntry]) -> str | None:
        theirs = record["made_by"]
        for name in _MADE_BY_FIELDS:
            a, b = theirs.get(name), self.made_by.get(name)
            if name == "model":
                a = {k: v for k, v in (a or {}).items() if k != "name"}
                b = {k: v for k, v in (b or {}).items() if k != "name"}
            if a != b:
                return f"{path.name} says {name} {_show(name, theirs.get(name))}, this run's is " \
                       f"{_show(name, self.made_by.get(name))}"
        inputs = {**record["planned"], **{k: v.get("input_sha256") for k, v in record["outputs"].items()}}
        for rel, sha in inputs.items():
            parsed = OutputFile.parse(Path(rel))
            entry = by_stem.get(parsed.stem) if parsed else None
            if entry is None:
                return f"{path.name} lists {rel}, a tile this manifest ({len(by_stem)} tiles) does not have"
            if sha != entry.sha256:
                return (f"{path.name} made {rel} from another input than this manifest's {entry.file} (scan "
                        f"{entry.uid}, tile {entry.tile}; the tiles were made again since)")
        return None

    def _output_files(self) -> list[str]:
        found = []
        for directory in [self.out_dir, *sorted(self.out_dir.glob("dumpOutput_device*"))]:
            if directory.is_dir():
                found += [p.relative_to(self.out_dir).as_posix() for p in sorted(directory.iterdir())
                          if p.is_file() and OutputFile.parse(p) is not None]
        return found

    # -- resuming and recording --------------------------------------------------------------------------------
    def adopt(self, batch: list[ManifestEntry]) -> bool:
        """True when every output of ``batch`` is the file a matching record lists (whole, same sha256)."""
        adopted = {}
        for entry in batch:
            rel, path = self.rel(entry), self.path(entry)
            claim = self.claims.get(rel)
            if not claim or claim.get("input_sha256") != entry.sha256 or not output_is_complete(path):
                return False
            try:
                if sha256_file(path) != claim.get("output_sha256"):
                    return False
            except OSError:
                return False
            adopted[rel] = claim
        self.outputs.update(adopted)
        return True

    def written(self, entry: ManifestEntry, path: Path) -> None:
        self.outputs[self.rel(entry)] = {"uid": entry.uid, "tile": entry.tile, "input_sha256": entry.sha256,
                                         "output_sha256": sha256_file(path)}

    def save(self, record: dict[str, Any], report: InferenceReport, complete: bool, throttle: bool = False) -> None:
        now = time.monotonic()
        if throttle and now - self._saved_at < _RECORD_SAVE_INTERVAL_S:
            return
        self._saved_at, self.started = now, True
        ensure_dir(self.out_dir)
        atomic_write_json(self.record_path, {
            **record, **report.to_dict(), "record_version": 2, "complete": complete, "made_by": self.made_by,
            "planned": self.planned, "outputs": self.outputs})


def _show(name: str, value: Any) -> str:
    if name == "model" and isinstance(value, dict):
        sha = value.get("sha256")
        label = value.get("name") or value.get("kind")
        return f"{label} (sha256 {sha[:12]}…)" if isinstance(sha, str) else str(label)
    return repr(value)


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
