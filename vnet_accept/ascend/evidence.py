"""What the ``npu`` tests judge: a results folder, copied from an Ascend host (replay) or filled here (live).

Both views answer the same questions - the outputs of a batch size, its ATC console, the throughput figures,
the SoC, the ONNX the OMs came from - so every criterion is computed by one code path. :class:`ReplayEvidence`
reads ``--npu-results DIR`` as it is; :class:`LiveEvidence` first runs the step that produces the answer
(:class:`~vnet_accept.ascend.collect.LiveCollector`), then reads the folder it wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vnet_accept.ascend.results_folder import (
    AtcRecord,
    BatchResults,
    NpuResults,
    PerfEvidence,
    collect_perf,
    load_npu_results,
)
from vnet_accept.errors import ToolError


class ReplayEvidence:
    """``--npu-results DIR``: judged as found; nothing is run."""

    kind = "replay"

    def __init__(self, results: NpuResults) -> None:
        self.results = results
        self._perf: dict[str, PerfEvidence] = {}

    @property
    def root(self) -> Path:
        return self.results.root

    @property
    def soc_version(self) -> str | None:
        return self.results.soc_version

    @property
    def reference_onnx(self) -> Path | None:
        """The ONNX the OMs were converted from, when the folder holds it."""
        return self.results.onnx

    def describe(self) -> str:
        return f"NPU results copied from an Ascend host: {self.results.describe()}"

    def batch(self, batch_size: int) -> BatchResults:
        """The outputs at ``batch_size``; :class:`~vnet_accept.errors.DataError` naming what was expected."""
        return self.results.results_for(batch_size)

    def atc(self, batch_size: int) -> AtcRecord | None:
        return self.results.atc.get(batch_size)

    def om_path(self, batch_size: int) -> Path | None:
        """The OM, where it is on this machine (live runs only; a replay folder holds the consoles, not OMs)."""
        return None

    def perf(self, batch_sizes: Sequence[int], statistic: str) -> PerfEvidence:
        if statistic not in self._perf:
            self._perf[statistic] = collect_perf(self.results, statistic)
        return self._perf[statistic]


class LiveEvidence(ReplayEvidence):
    """Results produced on this Ascend host by a :class:`~vnet_accept.ascend.collect.LiveCollector`."""

    kind = "live"

    def __init__(self, collector) -> None:
        self.collector = collector
        super().__init__(load_npu_results(collector.root))

    def describe(self) -> str:
        c = self.collector
        return (f"NPU results produced here ({c.tool.name} on device(s) {', '.join(map(str, c.device_ids))}, "
                f"{c.soc_version}) in {c.root}")

    def _reload(self) -> None:
        self.results = load_npu_results(self.collector.root)
        self._perf.clear()

    def batch(self, batch_size: int) -> BatchResults:
        self.collector.dataset(batch_size)  # ToolError (ATC or the tool) fails the test with its reason
        self._reload()
        return super().batch(batch_size)

    def atc(self, batch_size: int) -> AtcRecord | None:
        try:
            self.collector.om(batch_size)
        except ToolError:
            pass  # the console and exit status are in atc_bs<N>.log, which the record reads
        self._reload()
        return super().atc(batch_size)

    def om_path(self, batch_size: int) -> Path | None:
        return self.collector.oms.get(batch_size)

    def perf(self, batch_sizes: Sequence[int], statistic: str) -> PerfEvidence:
        failures = {}
        for bs in batch_sizes:
            try:
                self.collector.perf(bs)
            except ToolError as exc:
                failures[bs] = str(exc).splitlines()[0]
        self._reload()
        evidence = super().perf(batch_sizes, statistic)
        evidence.failures.update(failures)
        return evidence
