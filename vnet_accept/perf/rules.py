"""The throughput rules of SPEC §7: card fps against the T4, the placement tier, the 310P rule, PerfStatus, and
the validity of a timed run (loops, spread, warm-up; reported, not gating).

Every verdict carries the measured value, the threshold, the basis of both (per chip / per card, mean / median)
and a one-line ``explanation`` whose beginning is the verdict and the key numbers (pytest's short summary shows
only the first line). Reference numbers come from :mod:`vnet_accept.reference` only.
"""

from __future__ import annotations

import statistics as stats_lib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from vnet_accept.errors import UsageError
from vnet_accept.perf.measurement import PerfMeasurement, format_fps
from vnet_accept.reference import (
    AUTHORITATIVE_BATCH_SIZES,
    CHIPS_PER_CARD,
    MAX_P99_SPREAD,
    MIN_TIMED_LOOPS,
    PERF_STATUS_VALUES,
    PORT_310_CHIP_FPS,
    RULE_310P_VS_310,
    RULE_310P_VS_T4,
    T4_FPS,
    T4_FPS_BASIS,
    T4_GPU,
    T4_TENSORRT_VERSION,
    TIER_BOUNDS,
    TIER_NAMES,
    WARMUP_OUTLIER_FACTOR,
)

REFERENCE_T4_SOURCE = "the reference port's T4 table (published)"
REFERENCE_310_SOURCE = "the reference port's Ascend 310 figures (published)"


def chips_per_card_for(soc_version: str) -> int:
    """Chips on one card of this SoC: Ascend310 -> 4, Ascend310P* -> 1 (SPEC §7)."""
    soc = soc_version.strip()
    for family in sorted(CHIPS_PER_CARD, key=len, reverse=True):  # "Ascend310P" before "Ascend310"
        if soc.lower().startswith(family.lower()) and (family.endswith("P") or not soc[len(family):]):
            return CHIPS_PER_CARD[family]
    raise UsageError(f"chips per card of SoC {soc_version!r} unknown (known: {', '.join(CHIPS_PER_CARD)}); "
                     "pass --chips-per-card N")


def card_fps(chip_fps: float, chips_per_card: int) -> float:
    """A card's throughput: the per-chip figure times the chips on the card (the tools measure one chip)."""
    if chips_per_card < 1:
        raise ValueError(f"chips per card must be >= 1, got {chips_per_card}")
    return chip_fps * chips_per_card


@dataclass(frozen=True)
class T4Threshold:
    batch_size: int
    fps: float
    basis: str  # "mean" or "median" of the GPU-compute time
    source: str
    warnings: tuple[str, ...] = ()
    gpu: str | None = None  # the GPU the log names ("Selected Device"), None where it names none
    tensorrt_version: str | None = None


def reference_t4_thresholds() -> dict[int, T4Threshold]:
    return {bs: T4Threshold(bs, fps, T4_FPS_BASIS[bs], REFERENCE_T4_SOURCE, gpu=T4_GPU,
                            tensorrt_version=T4_TENSORRT_VERSION) for bs, fps in T4_FPS.items()}


def t4_thresholds_from(measurements: Iterable[PerfMeasurement]) -> dict[int, T4Threshold]:
    """T4 thresholds from trtexec measurements; two different figures for one batch size are a usage error."""
    thresholds: dict[int, T4Threshold] = {}
    for m in measurements:
        if m.scope != "gpu":
            continue
        new = T4Threshold(m.batch_size, m.fps, m.basis, m.source_file, m.warnings, gpu=m.device_name,
                          tensorrt_version=m.tool_version)
        old = thresholds.get(m.batch_size)
        if old is not None and (old.fps, old.basis) != (new.fps, new.basis):
            raise UsageError(f"two T4 figures for bs{m.batch_size}: {old.fps:.6g} fps ({old.source}) and "
                             f"{new.fps:.6g} fps ({new.source}); pass one trtexec log per batch size")
        thresholds[m.batch_size] = new
    return thresholds


@dataclass(frozen=True)
class NpuFigure:
    """The NPU throughput at one batch size, combined over the chips measured (the mean per-chip figure)."""

    batch_size: int
    chip_fps: float
    basis: str  # "mean"/"median", or "mixed (…)" when files disagree
    sources: tuple[str, ...]
    chip_fps_each: tuple[float, ...]

    def describe_spread(self) -> str:
        if len(self.chip_fps_each) < 2:
            return ""
        return (f"mean of {len(self.chip_fps_each)} chip figures, {min(self.chip_fps_each):.6g}–"
                f"{max(self.chip_fps_each):.6g}")


def combine_chip_figures(measurements: Iterable[PerfMeasurement]) -> dict[int, NpuFigure]:
    """Per batch size, the mean per-chip fps of the NPU measurements (several device ids are samples of it)."""
    by_bs: dict[int, list[PerfMeasurement]] = {}
    for m in measurements:
        if m.scope == "chip":
            by_bs.setdefault(m.batch_size, []).append(m)
        elif m.scope == "card":
            raise UsageError(f"{m.where}: a per-card figure; the rules start from per-chip figures")
    figures = {}
    for bs, group in sorted(by_bs.items()):
        bases = sorted({m.basis for m in group})
        figures[bs] = NpuFigure(bs, stats_lib.fmean(m.fps for m in group),
                                bases[0] if len(bases) == 1 else "mixed (" + "/".join(bases) + ")",
                                tuple(m.where for m in group), tuple(m.fps for m in group))
    return figures


@dataclass(frozen=True)
class ThroughputVerdict:
    """Card fps against the T4 at one batch size. ``passed`` is None when there is nothing to compare."""

    batch_size: int
    chips_per_card: int
    chip_fps: float | None
    card_fps: float | None
    npu_basis: str | None
    npu_sources: tuple[str, ...]
    t4_fps: float | None
    t4_basis: str | None
    t4_source: str | None
    ratio: float | None
    passed: bool | None
    explanation: str
    warnings: tuple[str, ...] = ()
    t4_gpu: str | None = None  # what the T4 figure was measured on, as its log says
    t4_tensorrt_version: str | None = None

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NO VERDICT"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}

    def criterion_details(self) -> dict[str, Any]:
        """``details`` of a ``perf.throughput.bs<N>`` criterion as the gate report reads them (report.record)."""
        return {"batch_size": self.batch_size, "chip_fps": self.chip_fps, "card_fps": self.card_fps,
                "chips_per_card": self.chips_per_card, "t4_fps": self.t4_fps, "t4_basis": self.t4_basis,
                "ratio": self.ratio, "statistic": self.npu_basis, "source": ", ".join(self.npu_sources),
                "sources": list(self.npu_sources), "t4_source": self.t4_source, "t4_gpu": self.t4_gpu,
                "t4_tensorrt_version": self.t4_tensorrt_version, "warnings": list(self.warnings)}


def judge_batch_size(bs: int, npu: NpuFigure | None, t4: T4Threshold | None, chips_per_card: int) -> ThroughputVerdict:
    """Card fps (per-chip fps × chips) against the T4 at one batch size; pass iff strictly faster."""
    warnings = tuple(t4.warnings) if t4 else ()
    t4_setup = dict(t4_gpu=t4.gpu, t4_tensorrt_version=t4.tensorrt_version) if t4 else {}
    if npu is None or t4 is None:
        card = card_fps(npu.chip_fps, chips_per_card) if npu else None
        if npu is None:
            why = "no NPU measurement" + (f"; T4 {format_fps(t4.fps)} fps ({t4.basis})" if t4 else "")
        else:
            why = f"no T4 threshold; card {card:.2f} fps"
        return ThroughputVerdict(
            bs, chips_per_card, npu.chip_fps if npu else None, card, npu.basis if npu else None,
            npu.sources if npu else (), t4.fps if t4 else None, t4.basis if t4 else None,
            t4.source if t4 else None, None, None, f"NO VERDICT bs{bs}: {why}", warnings, **t4_setup)
    card = card_fps(npu.chip_fps, chips_per_card)
    ratio = card / t4.fps
    passed = card > t4.fps
    relation = ">" if passed else "<="
    spread = f"; {npu.describe_spread()}" if npu.describe_spread() else ""
    explanation = (f"{'PASS' if passed else 'FAIL'} bs{bs}: card {card:.2f} fps ({chips_per_card} × "
                   f"{format_fps(npu.chip_fps)} fps per chip, {npu.basis}{spread}) {relation} "
                   f"T4 {format_fps(t4.fps)} fps (GPU compute {t4.basis}) — {ratio:.2f}×")
    return ThroughputVerdict(bs, chips_per_card, npu.chip_fps, card, npu.basis, npu.sources, t4.fps, t4.basis,
                             t4.source, ratio, passed, explanation, warnings, **t4_setup)


def tier_for_ratio(ratio: float) -> str:
    """< 1.0 Research, 1.0–1.2 Official (both ends inclusive), > 1.2 Benchmark (SPEC §7)."""
    low, high = TIER_BOUNDS
    if ratio < low:
        return TIER_NAMES[0]
    return TIER_NAMES[1] if ratio <= high else TIER_NAMES[2]


@dataclass(frozen=True)
class PlacementVerdict:
    """The placement tier from the ratios at the authoritative batch sizes; the lower ratio decides."""

    tier: str | None
    ratios: Mapping[int, float] = field(default_factory=dict)
    deciding_batch_size: int | None = None
    perf_status: str | None = None
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratios": dict(self.ratios)}

    def criterion_details(self) -> dict[str, Any]:
        """``details`` of the ``perf.tier`` criterion as the gate report reads them (report.record)."""
        return {"ratios": dict(self.ratios), "deciding_batch_size": self.deciding_batch_size,
                "perf_status": self.perf_status}


def placement(verdicts: Iterable[ThroughputVerdict],
              authoritative: tuple[int, ...] = AUTHORITATIVE_BATCH_SIZES) -> PlacementVerdict:
    verdicts = list(verdicts)
    ratios = {v.batch_size: v.ratio for v in verdicts if v.batch_size in authoritative and v.ratio is not None}
    missing = [bs for bs in authoritative if bs not in ratios]
    if missing:
        return PlacementVerdict(None, ratios, explanation=(
            f"NO PLACEMENT: no card/T4 ratio at {', '.join(f'bs{bs}' for bs in missing)} (the tier is decided "
            f"at {' and '.join(f'bs{bs}' for bs in authoritative)})"))
    deciding = min(ratios, key=ratios.get)
    tier = tier_for_ratio(ratios[deciding])
    status = perf_status(verdicts, tier)
    low, high = TIER_BOUNDS
    shown = ", ".join(f"{ratios[bs]:.2f}× at bs{bs}" for bs in authoritative)
    alias = ' ("Perfect")' if tier == TIER_NAMES[2] else ""
    explanation = (f"{tier.upper()}{alias}: card/T4 {shown}; the lower, {ratios[deciding]:.2f}× at bs{deciding}, "
                   f"decides (< {low:g} Research, {low:g}–{high:g} Official, > {high:g} Benchmark); "
                   f"PerfStatus:{status}")
    return PlacementVerdict(tier, ratios, deciding, status, explanation)


def perf_status(verdicts: Iterable[ThroughputVerdict], tier: str) -> str:
    """``modelzoo_level.txt`` PerfStatus under the gate's reading of SPEC §7 (see ``reference.PERF_STATUS_VALUES``)."""
    perfect, ok, pok, nok = PERF_STATUS_VALUES
    if tier == TIER_NAMES[0]:
        return nok
    if not all(v.passed for v in verdicts if v.passed is not None):
        return pok
    return perfect if tier == TIER_NAMES[2] else ok


def parse_modelzoo_level(text: str, source: str = "modelzoo_level.txt") -> dict[str, str]:
    """``Key:Value`` lines (``FuncStatus:OK``, ``PerfStatus:PERFECT`` …); blank lines ignored, CRLF tolerated."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{source}:{number}: {line!r} is not 'Key:Value' (e.g. PerfStatus:OK)")
        values[key.strip()] = value.strip()
    claimed = values.get("PerfStatus")
    if claimed is not None and claimed not in PERF_STATUS_VALUES:
        raise UsageError(f"{source}: PerfStatus:{claimed} is not one of {', '.join(PERF_STATUS_VALUES)}")
    return values


@dataclass(frozen=True)
class PerfStatusClaim:
    """A contributor's ``PerfStatus`` against the one the measurements give."""

    claimed: str | None
    computed: str | None
    passed: bool | None
    explanation: str


def check_perf_status_claim(values: Mapping[str, str], result: PlacementVerdict) -> PerfStatusClaim:
    claimed = values.get("PerfStatus")
    if claimed is None:
        return PerfStatusClaim(None, result.perf_status, None, "NO VERDICT PerfStatus: modelzoo_level.txt claims none")
    if result.perf_status is None:
        return PerfStatusClaim(claimed, None, None, f"NO VERDICT PerfStatus:{claimed} claimed; the measurements "
                               "give no placement to compare with")
    agrees = claimed == result.perf_status
    return PerfStatusClaim(claimed, result.perf_status, agrees,
                           f"{'PASS' if agrees else 'FAIL'} PerfStatus: claimed {claimed}, measured "
                           f"{result.perf_status} ({result.tier} tier)")


@dataclass(frozen=True)
class Rule310PVerdict:
    """310P rule at one batch size: 310P card >= 1.2 × 310 card and >= 1.6 × T4 (SPEC §7)."""

    batch_size: int
    card_fps_310p: float
    card_fps_310: float
    t4_fps: float
    needed_vs_310: float
    needed_vs_t4: float
    passed: bool
    explanation: str
    source_310: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_310_card_fps() -> dict[int, float]:
    return {bs: card_fps(fps, CHIPS_PER_CARD["Ascend310"]) for bs, fps in PORT_310_CHIP_FPS.items()}


def judge_310p(card_fps_310p: Mapping[int, float], card_fps_310: Mapping[int, float],
               t4: Mapping[int, T4Threshold], source_310: str = REFERENCE_310_SOURCE) -> list[Rule310PVerdict]:
    verdicts = []
    for bs in sorted(set(card_fps_310p) & set(card_fps_310) & set(t4)):
        fps = card_fps_310p[bs]
        need_310 = RULE_310P_VS_310 * card_fps_310[bs]
        need_t4 = RULE_310P_VS_T4 * t4[bs].fps
        passed = fps >= need_310 and fps >= need_t4
        explanation = (f"{'PASS' if passed else 'FAIL'} 310P rule bs{bs}: card {fps:.2f} fps vs "
                       f"{RULE_310P_VS_310:g} × 310 card {card_fps_310[bs]:.2f} = {need_310:.2f} and "
                       f"{RULE_310P_VS_T4:g} × T4 {format_fps(t4[bs].fps)} ({t4[bs].basis}) = {need_t4:.2f} fps")
        verdicts.append(Rule310PVerdict(bs, fps, card_fps_310[bs], t4[bs].fps, need_310, need_t4, passed,
                                        explanation, source_310))
    return verdicts


def t4_basis_report(measurements: Iterable[PerfMeasurement]) -> str | None:
    """A statement when the T4 figures in use mix statistics (the port's table: median at bs1, mean elsewhere)."""
    gpu = sorted((m for m in measurements if m.scope == "gpu"), key=lambda m: m.batch_size)
    bases = {m.basis for m in gpu}
    if len(bases) < 2:
        return None
    parts = []
    for m in gpu:
        other = "median" if m.basis == "mean" else "mean"
        alt = m.alternatives.get(other)
        parts.append(f"bs{m.batch_size} {format_fps(m.fps)} fps from the {m.basis}"
                     + (f" ({other}: {format_fps(alt)})" if alt is not None else ""))
    return ("INCONSISTENT T4 basis: the T4 figures mix the median and the mean of the GPU-compute time — "
            + "; ".join(parts) + ". Pass --statistic mean or --statistic median to judge on one statistic.")


def reference_t4_basis_report() -> str | None:
    bases = set(T4_FPS_BASIS.values())
    if len(bases) < 2:
        return None
    by_basis = {b: [bs for bs, basis in sorted(T4_FPS_BASIS.items()) if basis == b] for b in sorted(bases)}
    listed = "; ".join(f"{b} at {', '.join(f'bs{bs}' for bs in sizes)}" for b, sizes in by_basis.items())
    return f"INCONSISTENT T4 basis in {REFERENCE_T4_SOURCE}: {listed}."


# --- run validity: reported next to every figure, not gating --------------------------------------------------
# The tools' own figures are what the port was judged on, and a figure from a short or unsteady run is still a
# figure — but the reader must see that it is one.
@dataclass(frozen=True)
class RunValidity:
    source: str
    batch_size: int
    loops: int | None  # timed inference calls (batches)
    loops_source: str | None
    spread: float | None  # (p99 - median) / median, or (max - min) / median without a p99
    spread_basis: str | None
    warmup_suspect: bool
    problems: tuple[str, ...]
    min_loops: int
    max_spread: float

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        parts = [f"{self.loops} timed calls" + (f" ({self.loops_source})" if self.loops_source else "")
                 if self.loops is not None else "timed calls unknown"]
        if self.spread is not None:
            parts.append(f"{self.spread_basis} {self.spread * 100:.1f} %")
        verdict = "valid" if self.ok else "questionable: " + "; ".join(self.problems)
        return ", ".join(parts) + f" — {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def assess_run(m: PerfMeasurement, *, min_loops: int = MIN_TIMED_LOOPS, max_spread: float = MAX_P99_SPREAD,
               warmup_factor: float = WARMUP_OUTLIER_FACTOR) -> RunValidity:
    stats = m.latency
    loops = stats.count if stats else None
    problems = []
    if loops is not None and loops < min_loops:
        problems.append(f"only {loops} timed calls (< {min_loops})")
    spread = basis = None
    warmup = False
    if stats is not None and stats.median_ms:
        if stats.p99_ms is not None:
            spread, basis = (stats.p99_ms - stats.median_ms) / stats.median_ms, "p99 over median"
        elif stats.max_ms is not None and stats.min_ms is not None:
            spread, basis = (stats.max_ms - stats.min_ms) / stats.median_ms, "max-min over median"
        if spread is not None and spread > max_spread:
            problems.append(f"{basis} {spread * 100:.1f} % (> {max_spread * 100:g} %): unsteady run")
        if stats.first_ms is not None and stats.first_ms > warmup_factor * stats.median_ms:
            warmup = True
            factor = stats.first_ms / stats.median_ms
            problems.append(f"the first timed call ({stats.first_ms:.4g} ms) is {factor:.1f}× the median: warm-up "
                            "not excluded")
        elif stats.max_ms is not None and stats.p99_ms is not None and stats.max_ms > warmup_factor * stats.p99_ms:
            warmup = True
            problems.append(f"max {stats.max_ms:.4g} ms is {stats.max_ms / stats.p99_ms:.1f}× the p99: a cold "
                            "first call was probably timed (warm-up not excluded)")
    return RunValidity(m.source_file, m.batch_size, loops, stats.count_source if stats else None, spread, basis,
                       warmup, tuple(problems), min_loops, max_spread)
