"""A pipelined streaming pass: read ahead, infer, post-process behind — no output files (issue 6).

:func:`vnet_accept.results.inference.run_inference` with a ``sink`` and no output folder is the gate's streaming
accuracy pass: each batch is read, inferred and scored in turn. On a GPU the device then idles while the CPU reads
and scores. :func:`stream_outputs` runs the same three stages overlapped — the next batch is read in a thread
while the device computes, and the previous batch is scored in another — with the same ``sink(entries,
outputs)`` contract, so any sink works with either (e.g. an
:class:`~vnet_accept.metrics.accuracy.AccuracyAccumulator` via :func:`accumulator_sink`). ``gpu-check`` times
both on the same data and checks they score identically.

Array convention: ``read(entry)`` returns one tile's network input ``(D, H, W)`` float32; batches fed to the
runner are ``(N, 1, D, H, W)``; the sink receives ``(N, D, H, W, 2)`` float32 log-probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Sink = Callable[[Sequence[Any], np.ndarray], None]


def iter_batches(entries: Sequence[Any], read: Callable[[Any], np.ndarray], batch_size: int,
                 prefetch: int = 2) -> Iterator[tuple[list[Any], np.ndarray]]:
    """``(entries, (N, 1, D, H, W) float32)`` batches in order, cut at multiples of ``batch_size`` (as
    ``run_inference`` cuts them), read up to ``prefetch`` batches ahead in a background thread."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    groups = [list(entries[i:i + batch_size]) for i in range(0, len(entries), batch_size)]

    def load(group: list[Any]) -> np.ndarray:
        return np.ascontiguousarray(np.stack([read(e) for e in group])[:, None], dtype=np.float32)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vnet-read") as pool:
        pending: list[Future] = [pool.submit(load, g) for g in groups[:max(prefetch, 1)]]
        for i, group in enumerate(groups):
            batch = pending.pop(0).result()
            following = i + len(pending) + 1
            if following < len(groups):
                pending.append(pool.submit(load, groups[following]))
            yield group, batch


@dataclass
class StreamStats:
    tiles: int = 0
    batches: int = 0
    seconds: float = 0.0  # wall clock of the whole pass
    input_wait_s: float = 0.0  # the device loop waiting for the reader
    infer_s: float = 0.0  # runner.infer calls (host-to-device, compute, device-to-host)
    sink_wait_s: float = 0.0  # the device loop waiting for the sink to finish the previous batch

    @property
    def tiles_per_s(self) -> float:
        return self.tiles / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tiles_per_s": self.tiles_per_s}


def stream_outputs(runner: Any, batches: Iterable[tuple[Sequence[Any], np.ndarray]], sink: Sink,
                   input_name: str = "actual_input_1", output_name: str = "output1") -> StreamStats:
    """Run every batch through the active ``runner`` and hand ``(entries, outputs)`` to ``sink``.

    The sink of batch k runs in a worker thread while batch k+1 is inferred; at most one sink call is pending,
    so memory stays at two batches of outputs. A sink exception stops the pass and propagates.
    """
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
            pending = pool.submit(sink, list(entries), out)
            stats.input_wait_s += t1 - t0
            stats.infer_s += t2 - t1
            stats.sink_wait_s += t3 - t2
            stats.tiles += len(entries)
            stats.batches += 1
        if pending is not None:
            pending.result()
    stats.seconds = time.perf_counter() - start
    return stats


def accumulator_sink(accumulator: Any) -> Sink:
    """A sink scoring manifest entries (anything with ``.key`` = (uid, tile)) into an ``AccuracyAccumulator``."""

    def sink(entries: Sequence[Any], outputs: np.ndarray) -> None:
        accumulator.add_batch([e.key for e in entries], outputs)

    return sink
