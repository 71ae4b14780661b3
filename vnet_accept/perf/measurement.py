"""The one result type every performance parser returns, and the vocabulary of its basis (SPEC §5, §7).

A throughput figure means nothing without its basis, so a :class:`PerfMeasurement` always says

* ``scope``: what the figure covers — ``"chip"`` (one Ascend device id, what ais_bench and the legacy tool
  measure), ``"card"`` (a whole card) or ``"gpu"`` (trtexec);
* ``basis``: which latency statistic it comes from — ``"mean"`` or ``"median"``;
* ``metric``: the tool's quantity, e.g. ``Interface throughputRate`` or ``1000·bs / GPU Compute median``;
* where the batch size came from (the content, the file name, or the user).

Latencies are per inference call, i.e. per batch, in milliseconds; fps is samples (tiles) per second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from vnet_accept.errors import DataError
from vnet_accept.reference import T4_FPS_BASIS

#: Statistics a user may select. ``port`` reproduces the port's choices: the tools' own (mean-based) NPU figures
#: and, for the T4, the median at bs1 and the mean elsewhere (``reference.T4_FPS_BASIS``).
STATISTICS = ("mean", "median", "port")
SCOPES = ("chip", "card", "gpu")


class PerfFileError(DataError):
    """A file given as a performance file that cannot be used. The message names the file and what to do."""

    def __init__(self, source: str, reason: str, kind: str = "unreadable") -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.kind = kind


class NotAPerfFile(PerfFileError):
    """A file of a kind the gate recognises (an ATC log, an accuracy line …) that holds no throughput figure."""


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one inference call (one batch) in milliseconds, as far as the tool reports it.

    ``count`` is the number of timed calls; ``count_source`` says whether the tool printed it or it was derived
    (e.g. trtexec's total compute time / mean).
    """

    min_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    median_ms: float | None = None
    p99_ms: float | None = None
    count: int | None = None
    count_source: str | None = None
    first_ms: float | None = None  # the first timed call, where the tool lists every call

    def get(self, statistic: str) -> float | None:
        return {"mean": self.mean_ms, "median": self.median_ms}[statistic]

    def describe(self) -> str:
        parts = [f"{name} {value:.6g} ms" for name, value in (
            ("min", self.min_ms), ("median", self.median_ms), ("mean", self.mean_ms), ("p99", self.p99_ms),
            ("max", self.max_ms)) if value is not None]
        if self.count is not None:
            parts.append(f"n={self.count}" + (f" ({self.count_source})" if self.count_source else ""))
        return ", ".join(parts) if parts else "no latency statistics"


@dataclass(frozen=True)
class PerfMeasurement:
    """One throughput figure read from one file, with everything needed to judge and to re-state it."""

    tool: str  # "benchmark" (legacy), "ais_bench", "trtexec"
    file_format: str  # human name of the format, e.g. "legacy perf_vision file"
    source_file: str
    batch_size: int
    batch_size_source: str  # "content (…)", "file name", "--batch-size"
    fps: float  # samples per second over ``scope``
    basis: str  # "mean" or "median"
    scope: str  # "chip", "card" or "gpu"
    metric: str  # the tool's quantity the fps is (or is computed from)
    latency: LatencyStats | None = None
    device_id: int | None = None
    input_name: str | None = None
    input_shape: tuple[int, ...] | None = None
    tool_version: str | None = None
    device_name: str | None = None
    line: int | None = None  # 1-based line of the figure, where the format has lines
    #: the same run's fps under the other statistics, e.g. {"mean": 10.302, "median": 10.319}
    alternatives: Mapping[str, float] = field(default_factory=dict, hash=False, compare=False)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if self.basis not in ("mean", "median"):
            raise ValueError(f"basis must be 'mean' or 'median', got {self.basis!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise PerfFileError(self.source_file, f"throughput {self.fps!r} at bs{self.batch_size} is not a "
                                "positive number; the run did not produce a usable figure")

    @property
    def where(self) -> str:
        return f"{self.source_file}:{self.line}" if self.line else self.source_file

    def describe(self) -> str:
        """E.g. ``6.10496 fps per chip (mean; Interface throughputRate) at bs1, device 0``."""
        device = f", device {self.device_id}" if self.device_id is not None else ""
        return (f"{format_fps(self.fps)} fps per {self.scope} ({self.basis}; {self.metric}) at bs{self.batch_size}"
                f"{device}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alternatives"] = dict(self.alternatives)
        return data


def resolve_statistic(statistic: str, tool: str, batch_size: int) -> str:
    """The statistic (``mean``/``median``) to use for one figure under the user's choice ``statistic``.

    ``port`` follows the port: NPU tools' own figures are mean-based; the T4 table used the median at bs1 and the
    mean elsewhere (SPEC §7). A batch size outside the port's table gets the mean.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if statistic != "port":
        return statistic
    if tool == "trtexec":
        return T4_FPS_BASIS.get(batch_size, "mean")
    return "mean"


def fps_from_latency(batch_size: int, latency_ms: float) -> float:
    """Samples per second of calls of ``batch_size`` samples taking ``latency_ms`` each (SPEC §5)."""
    return 1000.0 * batch_size / latency_ms


def format_fps(fps: float) -> str:
    """Up to five decimals, trailing zeros dropped: the precision of the port's table (10.31899, 9.44)."""
    return f"{fps:.5f}".rstrip("0").rstrip(".")
