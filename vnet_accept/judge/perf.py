"""The throughput judgement (SPEC §7), one composition for the gate's ``perf.*`` criteria, ``vnet-accept perf`` and
the self-test: the card basis first, then card fps against the T4 per batch size, the placement tier, the 310P
rule, and the validity of every timed run.

1. **Card basis** (:func:`vnet_accept.perf.card_basis.check_card_basis`): card fps = per-chip fps × chips per card
   is only right when the multiplier is the card's. A ``--chips-per-card`` the SoC contradicts (a per-chip figure
   taken for the card's on a 310, a figure multiplied by 4 on a one-chip 310P), or a figure that is already per
   card, fails every throughput criterion whatever the numbers: it is their first line.
2. **Per batch size** (:func:`vnet_accept.perf.rules.judge_batch_size`): card fps > T4 fps, strictly. The chips
   measured (several device ids) are averaged per chip.
3. **Tier** by the lower card/T4 ratio at bs1 and bs16; the **310P rule** for an Ascend 310P card.

Every number states its basis: per chip or per card, mean or median, the file it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnet_accept.ascend.results_folder import PERF_KIND_HELP
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.perf.card_basis import CardBasis, check_card_basis
from vnet_accept.perf.measurement import PerfMeasurement, format_fps
from vnet_accept.perf.rules import (
    REFERENCE_310_SOURCE,
    PlacementVerdict,
    Rule310PVerdict,
    RunValidity,
    T4Threshold,
    ThroughputVerdict,
    assess_run,
    combine_chip_figures,
    judge_310p,
    judge_batch_size,
    placement,
    reference_310_card_fps,
    reference_t4_thresholds,
)
from vnet_accept.reference import AUTHORITATIVE_BATCH_SIZES, TIER_NAMES

STATISTIC_HELP = {
    "port": "as the port: the NPU tools' mean-based figures; T4 from the median at bs1 and the mean elsewhere",
    "mean": "mean latency everywhere",
    "median": "median latency where the file has one (legacy perf files have only mean-based figures)",
}

#: What ``perf.tier`` and ``perf.rule_310p`` require.
TIER_THRESHOLD = "Official or Benchmark"
RULE_310P_THRESHOLD = "0"


def throughput_threshold(t4_fps: float | None, t4_basis: str | None) -> str:
    """``perf.throughput.bs<N>``'s threshold: card fps above the T4's, with the statistic of its GPU-compute time."""
    return f"> T4 {t4_fps:.5g} fps ({t4_basis} GPU compute)" if t4_fps else "> T4 fps"


def throughput_threshold_in_force(batch_size: int, t4_logs: Any) -> str:
    """The threshold ``perf.throughput.bs<N>`` is held to before anything is measured: the reference port's T4 table
    at that batch size, or the figure ``--t4-logs`` gives (read when the NPU figures are judged)."""
    if t4_logs:
        return f"> T4 fps at bs{batch_size} from --t4-logs"
    t4 = reference_t4_thresholds().get(batch_size)
    if t4 is None:
        return f"> T4 fps (no T4 figure at bs{batch_size}: pass --t4-logs)"
    return throughput_threshold(t4.fps, t4.basis)


@dataclass
class ThroughputJudgement:
    """Everything :func:`throughput` decided; :meth:`criteria` are what the gate records and the CLI prints."""

    basis: CardBasis
    batch_sizes: tuple[int, ...]
    verdicts: dict[int, ThroughputVerdict]
    placement: PlacementVerdict
    rule_310p: list[Rule310PVerdict]
    validity: dict[int, list[tuple[PerfMeasurement, RunValidity]]]
    statistic: str
    t4_source: str
    kinds: dict[int, str] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)  # bs -> why a live run could not measure it
    required: tuple[int, ...] = ()  # batch sizes whose figure must be there (the gate: bs1 and bs16)

    @property
    def chips_per_card(self) -> int | None:
        return self.basis.chips_per_card

    @property
    def soc_version(self) -> str | None:
        return self.basis.soc_version

    def details(self, batch_size: int) -> dict[str, Any]:
        """``perf.throughput.bs<N>`` details: the report contract's keys plus percentiles and run validity."""
        v = self.verdicts[batch_size]
        runs = []
        for m, validity in self.validity.get(batch_size, []):
            lat = m.latency
            runs.append({"source": m.where, "device_id": m.device_id, "chip_fps": m.fps, "basis": m.basis,
                         "metric": m.metric, "latency_ms": None if lat is None else {
                             "min": lat.min_ms, "median": lat.median_ms, "mean": lat.mean_ms, "p99": lat.p99_ms,
                             "max": lat.max_ms, "count": lat.count, "count_source": lat.count_source},
                         "validity": validity.describe(), "valid": validity.ok, "notes": list(m.notes),
                         "warnings": list(m.warnings)})
        kind = self.kinds.get(batch_size)
        return {**v.criterion_details(), "soc_version": self.soc_version, "card_basis": self.basis.to_dict(),
                "runs": runs, "run_validity_ok": all(r["valid"] for r in runs) if runs else None,
                "figure_kind": kind, "figure_kind_meaning": PERF_KIND_HELP.get(kind or "")}

    def throughput_criterion(self, batch_size: int) -> Criterion:
        """``perf.throughput.bs<N>``: card fps > T4 fps; a card basis the SoC contradicts fails first."""
        v = self.verdicts[batch_size]
        cid = f"perf.throughput.bs{batch_size}"
        chips = self.chips_per_card
        description = f"card fps (per-chip fps × {chips or '?'} chips) > T4 fps at bs{batch_size}"
        threshold = throughput_threshold(v.t4_fps, v.t4_basis)
        chips_from = (self.basis.chips_source if self.basis.chips_source.startswith("--") or not self.soc_version
                      else f"{self.soc_version} from {self.basis.soc_source}")
        basis = (f"{v.npu_basis or 'per-chip'} figure × {chips or '?'} chips ({chips_from}); "
                 f"{self.kinds.get(batch_size) or 'NPU'} figures; T4 from {v.t4_source or self.t4_source}")
        common = dict(units="fps per card", threshold=threshold, basis=basis, **self.details(batch_size))
        if self.basis.passed is False:
            message = "\n".join(dict.fromkeys([self.basis.explanation, v.explanation]))
            return judged(cid, description, False, measured=v.card_fps, reason=self.basis.explanation,
                          message=message, **common)
        if self.chips_per_card is None:
            return judged(cid, description, None, reason=self.basis.explanation, **common)
        if v.passed is None and batch_size in self.failures:
            return judged(cid, description, False, reason=self.failures[batch_size], **common)
        if v.passed is None:
            why = "no T4 threshold at this batch size (pass --t4-logs)" if v.chip_fps is not None else \
                f"no NPU figure for bs{batch_size}"
            if v.chip_fps is None and batch_size in self.required:  # bs1/bs16 decide the tier: a failure
                return judged(cid, description, False, reason=f"required, not measured: {why} ({v.explanation})",
                              **common)
            return judged(cid, description, None, measured=v.card_fps, reason=f"{v.explanation}; {why}", **common)
        return judged(cid, description, v.passed, measured=v.card_fps, reason=v.explanation,
                      message="\n".join([v.explanation, self.basis.explanation]), **common)

    def tier_criterion(self) -> Criterion:
        """``perf.tier``: the placement tier from card/T4 at bs1 and bs16; pass = Official or Benchmark."""
        description = ("placement tier from card/T4 at bs1 and bs16, the lower deciding: < 1.0 Research, 1.0–1.2 "
                       "Official, > 1.2 Benchmark; pass = Official or Benchmark")
        common = dict(units="tier", threshold=TIER_THRESHOLD,
                      basis=f"card fps ({self.chips_per_card or '?'} chips) vs T4 at bs1 and bs16")
        absent = [bs for bs in AUTHORITATIVE_BATCH_SIZES if bs not in self.batch_sizes
                  or self.verdicts[bs].ratio is None]
        if absent:
            required = [bs for bs in absent if bs in self.required]
            what = "required and not measured" if required else "not judged"
            return judged("perf.tier", description, False if required else None, reason=(
                f"{what}: the tier is decided at bs1 and bs16, and the batch sizes judged "
                f"({','.join(map(str, self.batch_sizes))}) lack {', '.join(f'bs{b}' for b in absent)} (no card/T4 "
                "ratio there)"), **common)
        if self.basis.passed is False:
            return judged("perf.tier", description, False, measured=self.placement.tier,
                          reason=self.basis.explanation, **common)
        p = self.placement
        return judged("perf.tier", description, p.tier in TIER_NAMES[1:], measured=p.tier, reason=p.explanation,
                      explanation=p.explanation, **common, **p.criterion_details())

    def rule_310p_criterion(self) -> Criterion:
        """``perf.rule_310p``: a 310P card is ≥ 1.2 × the 310 card and ≥ 1.6 × the T4 at every batch size."""
        description = "310P rule: card fps ≥ 1.2 × the port's Ascend 310 card and ≥ 1.6 × the T4, at every batch size"
        common = dict(units="batch sizes failing", threshold=RULE_310P_THRESHOLD,
                      basis="card fps (1 chip) vs the port's 310 card figures and the T4")
        soc = self.soc_version or ""
        if not soc.lower().startswith("ascend310p"):
            return judged("perf.rule_310p", description, None, reason=f"applies to Ascend310P cards; this is "
                          f"{soc or 'an unknown SoC'} ({self.basis.soc_source})", **common)
        if not self.rule_310p:
            return judged("perf.rule_310p", description, None, reason="no batch size has both a 310P card figure "
                          "and a T4 threshold", **common)
        failed = [r for r in self.rule_310p if not r.passed]
        reason = "; ".join(r.explanation for r in (failed or self.rule_310p))
        return judged("perf.rule_310p", description, not failed and self.basis.passed is not False,
                      measured=len(failed), reason=reason, verdicts=[r.to_dict() for r in self.rule_310p], **common)

    def criteria(self) -> list[Criterion]:
        return [*(self.throughput_criterion(bs) for bs in self.batch_sizes), self.tier_criterion(),
                self.rule_310p_criterion()]

    @property
    def failed(self) -> bool:
        return any(c.verdict == "fail" for c in self.criteria())


def throughput(measurements: Sequence[PerfMeasurement], thresholds: Mapping[int, T4Threshold], *,
               soc_version: str | None, chips_per_card: int | None = None, soc_source: str = "--soc-version",
               chips_source: str = "--chips-per-card", batch_sizes: Sequence[int] | None = None,
               statistic: str = "port", t4_source: str = "the reference port's T4 table",
               kinds: Mapping[int, str] | None = None, card_fps_310: Mapping[int, float] | None = None,
               source_310: str = REFERENCE_310_SOURCE, statements: Sequence[str] = (),
               failures: Mapping[int, str] | None = None, required: Sequence[int] = ()) -> ThroughputJudgement:
    """Judge per-chip NPU ``measurements`` (GPU ones are ignored here) against ``thresholds`` on the card that
    ``soc_version`` and ``chips_per_card`` describe (either may be None: derived, or "not judged" when neither
    says). ``batch_sizes`` default to every batch size with a figure or a threshold; a ``required`` batch size
    without a figure fails the tier instead of leaving it not judged (the gate requires bs1 and bs16)."""
    npu = [m for m in measurements if m.scope != "gpu"]
    basis = check_card_basis(soc_version, chips_per_card, soc_source=soc_source, chips_source=chips_source,
                             measurements=npu)
    figures = combine_chip_figures(npu)
    sizes = tuple(sorted(batch_sizes if batch_sizes is not None else set(figures) | set(thresholds)))
    chips = basis.chips_per_card or chips_per_card or 1  # unknown: the figures are shown per chip, not judged
    verdicts = {bs: judge_batch_size(bs, figures.get(bs), thresholds.get(bs), chips) for bs in sizes}
    rule_310p: list[Rule310PVerdict] = []
    if (soc_version or "").lower().startswith("ascend310p"):
        card = {bs: v.card_fps for bs, v in verdicts.items() if v.card_fps is not None}
        rule_310p = judge_310p(card, dict(card_fps_310 or reference_310_card_fps()), thresholds, source_310)
    by_size: dict[int, list[PerfMeasurement]] = {}
    for m in npu:
        by_size.setdefault(m.batch_size, []).append(m)
    validity = {bs: [(m, assess_run(m)) for m in by_size.get(bs, [])] for bs in sizes}
    return ThroughputJudgement(basis, sizes, verdicts, placement(list(verdicts.values())), rule_310p, validity,
                               statistic, t4_source, dict(kinds or {}), list(statements), dict(failures or {}),
                               tuple(required))


def render(judgement: ThroughputJudgement, rejected: Sequence[Any] = (), extra: Sequence[PerfMeasurement] = ()) -> str:
    """The judgement as text (``vnet-accept perf``): the table per batch size, then every criterion's verdict,
    then every figure read with its basis and run validity, then the files not read."""
    j = judgement
    chips = j.chips_per_card
    out = [f"statistic: {j.statistic} ({STATISTIC_HELP.get(j.statistic, j.statistic)})",
           f"NPU: {j.soc_version or 'SoC unknown'}, {chips or '?'} chip(s) per card — card fps = per-chip fps × "
           f"{chips or '?'} ({j.basis.explanation})",
           f"T4 thresholds: {j.t4_source} (T4 fps = 1000·bs / GPU compute time)", ""]
    header = f"{'bs':>4}  {'NPU fps per chip (basis)':<26}{'card fps':>10}  {'T4 fps (basis)':<22}{'ratio':>7}  verdict"
    out += [header, "-" * len(header)]
    for bs in j.batch_sizes:
        v = j.verdicts[bs]
        chip = f"{format_fps(v.chip_fps)} ({v.npu_basis})" if v.chip_fps is not None else "—"
        card = f"{v.card_fps:.2f}" if v.card_fps is not None else "—"
        t4 = f"{format_fps(v.t4_fps)} ({v.t4_basis})" if v.t4_fps is not None else "—"
        ratio = f"{v.ratio:.2f}×" if v.ratio is not None else "—"
        verdict = j.throughput_criterion(bs).verdict.upper()
        out.append(f"{v.batch_size:>4}  {chip:<26}{card:>10}  {t4:<22}{ratio:>7}  {verdict}")
    out.append("")
    for bs in j.batch_sizes:
        v = j.verdicts[bs]
        out.append(j.throughput_criterion(bs).headline())
        out += [f"    WARNING (T4 threshold bs{bs}, {Path(v.t4_source or '').name}): {w}" for w in v.warnings]
    out += [j.tier_criterion().headline(), j.rule_310p_criterion().headline()]
    out += j.statements
    measured = [(m, validity) for bs in j.batch_sizes for m, validity in j.validity.get(bs, [])]
    measured += [(m, assess_run(m)) for m in extra]
    if measured:
        out += ["", "figures read:"]
        for m, validity in measured:
            out.append(f"  {m.source_file}: {m.describe()} [{m.file_format}; bs from {m.batch_size_source}]")
            if m.latency is not None and (m.latency.mean_ms is not None or m.latency.median_ms is not None):
                out.append(f"      latency per call: {m.latency.describe()}")
            out.append(f"      run: {validity.describe()}")
            out += [f"      note: {n}" for n in m.notes]
            out += [f"      WARNING: {w}" for w in m.warnings]
    if rejected:
        out += ["", f"not read ({len(rejected)}):"]
        out += [f"  {e.source}: {e.reason}" for e in rejected]
    return "\n".join(out)
