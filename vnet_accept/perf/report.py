"""Judging a set of parsed performance files, and stating the result as text or JSON.

:func:`evaluate` turns NPU measurements, T4 thresholds and the card geometry into verdicts (one per batch
size), the placement tier, the 310P rule where it applies and the validity of every run. :func:`format_text`
prints it so that every number carries its basis (per chip or per card, mean or median, batch size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnet_accept.perf.measurement import PerfFileError, PerfMeasurement, format_fps
from vnet_accept.perf.rules import (
    REFERENCE_310_SOURCE,
    REFERENCE_T4_SOURCE,
    PerfStatusClaim,
    PlacementVerdict,
    Rule310PVerdict,
    RunValidity,
    T4Threshold,
    ThroughputVerdict,
    assess_run,
    combine_chip_figures,
    judge_310p,
    judge_throughput,
    placement,
    reference_t4_basis_report,
    reference_t4_thresholds,
    t4_basis_report,
    t4_thresholds_from,
)

STATISTIC_HELP = {
    "port": "as the port: the NPU tools' mean-based figures; T4 from the median at bs1 and the mean elsewhere",
    "mean": "mean latency everywhere",
    "median": "median latency where the file has one (legacy perf files have only mean-based figures)",
}


@dataclass
class PerfReport:
    statistic: str
    soc_version: str
    chips_per_card: int
    t4_source: str  # "trtexec logs" or the reference table
    npu_measurements: list[PerfMeasurement]
    t4_measurements: list[PerfMeasurement]
    thresholds: Mapping[int, T4Threshold]
    verdicts: list[ThroughputVerdict]
    placement: PlacementVerdict
    rule_310p: list[Rule310PVerdict]
    validity: list[tuple[PerfMeasurement, RunValidity]]
    rejected: list[PerfFileError]
    statements: list[str] = field(default_factory=list)  # e.g. the T4 basis inconsistency
    claim: PerfStatusClaim | None = None  # a modelzoo_level.txt's PerfStatus against the measured one

    @property
    def failed(self) -> bool:
        return (any(v.passed is False for v in self.verdicts) or any(not r.passed for r in self.rule_310p)
                or (self.claim is not None and self.claim.passed is False))

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "statistic_meaning": STATISTIC_HELP[self.statistic],
            "soc_version": self.soc_version,
            "chips_per_card": self.chips_per_card,
            "t4_source": self.t4_source,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "placement": self.placement.to_dict(),
            "rule_310p": [r.to_dict() for r in self.rule_310p],
            "measurements": [{**m.to_dict(), "validity": v.to_dict()} for m, v in self.validity],
            "thresholds": {str(bs): vars(t) for bs, t in sorted(self.thresholds.items())},
            "statements": list(self.statements),
            "not_read": [{"file": e.source, "kind": e.kind, "reason": e.reason} for e in self.rejected],
            "perf_status_claim": vars(self.claim) if self.claim else None,
            "failed": self.failed,
        }


def evaluate(npu: Sequence[PerfMeasurement], t4: Sequence[PerfMeasurement] | None, *, statistic: str,
             soc_version: str, chips_per_card: int, rejected: Sequence[PerfFileError] = (),
             extra: Sequence[PerfMeasurement] = (), card_fps_310: Mapping[int, float] | None = None,
             source_310: str = REFERENCE_310_SOURCE) -> PerfReport:
    """Judge NPU measurements against T4 thresholds from trtexec measurements ``t4`` (None: the port's table).

    ``extra`` are further figures to show but not to judge (e.g. trtexec logs given while ``--t4`` names
    others). ``card_fps_310`` (the 310 card per batch size) enables the 310P rule for a 310P SoC.
    """
    if t4 is None:
        thresholds, t4_source = reference_t4_thresholds(), REFERENCE_T4_SOURCE
        statement = reference_t4_basis_report()
    else:
        thresholds = t4_thresholds_from(t4)
        t4_source = f"{len(t4)} trtexec log(s)"
        statement = t4_basis_report(t4)
    verdicts = judge_throughput(combine_chip_figures(npu), thresholds, chips_per_card)
    rule_310p: list[Rule310PVerdict] = []
    if soc_version.lower().startswith("ascend310p") and card_fps_310 is not None:
        card_310p = {v.batch_size: v.card_fps for v in verdicts if v.card_fps is not None}
        rule_310p = judge_310p(card_310p, card_fps_310, thresholds, source_310)
    shown = [*npu, *(t4 or ()), *extra]
    return PerfReport(statistic, soc_version, chips_per_card, t4_source, list(npu), list(t4 or ()), thresholds,
                      verdicts, placement(verdicts), rule_310p, [(m, assess_run(m)) for m in shown], list(rejected),
                      [statement] if statement else [])


def _short(path: str) -> str:
    return Path(path).name


def format_text(report: PerfReport) -> str:
    out = [f"statistic: {report.statistic} ({STATISTIC_HELP[report.statistic]})",
           f"NPU: {report.soc_version}, {report.chips_per_card} chip(s) per card — card fps = per-chip fps × "
           f"{report.chips_per_card}",
           f"T4 thresholds: {report.t4_source} (T4 fps = 1000·bs / GPU compute time)", ""]
    header = f"{'bs':>4}  {'NPU fps per chip (basis)':<26}{'card fps':>10}  {'T4 fps (basis)':<22}{'ratio':>7}  verdict"
    out += [header, "-" * len(header)]
    for v in report.verdicts:
        chip = f"{format_fps(v.chip_fps)} ({v.npu_basis})" if v.chip_fps is not None else "—"
        card = f"{v.card_fps:.2f}" if v.card_fps is not None else "—"
        t4 = f"{format_fps(v.t4_fps)} ({v.t4_basis})" if v.t4_fps is not None else "—"
        ratio = f"{v.ratio:.2f}×" if v.ratio is not None else "—"
        out.append(f"{v.batch_size:>4}  {chip:<26}{card:>10}  {t4:<22}{ratio:>7}  {v.verdict}")
    out.append("")
    for v in report.verdicts:
        out.append(v.explanation)
        out += [f"    WARNING (T4 threshold bs{v.batch_size}, {_short(v.t4_source or '')}): {w}" for w in v.warnings]
    out.append(f"placement: {report.placement.explanation}")
    if report.claim is not None:
        out.append(report.claim.explanation)
    out += [r.explanation for r in report.rule_310p]
    out += report.statements

    if report.validity:
        out += ["", "figures read:"]
        for m, validity in report.validity:
            out.append(f"  {_short(m.source_file)}: {m.describe()} [{m.file_format}; bs from {m.batch_size_source}]")
            if m.latency is not None and (m.latency.mean_ms is not None or m.latency.median_ms is not None):
                out.append(f"      latency per call: {m.latency.describe()}")
            out.append(f"      run: {validity.describe()}")
            out += [f"      note: {n}" for n in m.notes]
            out += [f"      WARNING: {w}" for w in m.warnings]
    if report.rejected:
        out += ["", f"not read ({len(report.rejected)}):"]
        out += [f"  {_short(e.source)}: {e.reason}" for e in report.rejected]
    return "\n".join(out)
