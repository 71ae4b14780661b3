"""``gate-report.md``: the model zoo README's tables, filled from ``gate-report.json``, ready to paste.

Sections: verdict; accuracy (the port's OM/ONNX/PyTorch error rate against the published 0.355 %, with the
absolute, relative and point-accuracy views, the bootstrap CI and the threshold each row was judged by; the
self-test's model apart, against its own threshold); performance per batch size (310 per chip and per card, the T4
threshold in force with its statistic and source even where nothing was judged, ratio, tier); parity and batch
invariance (measured, threshold, BN mode and dtype basis, the samples compared); other criteria;
``modelzoo_level.txt`` and why each line has its value; what was not judged and why; the settings in force;
provenance. Every number comes from the report and states its basis; a family that did not run gets a row saying
so (never a blank or an invented number).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vnet_accept.judge.perf import STATISTIC_HELP
from vnet_accept.metrics.accuracy import ci_withheld
from vnet_accept.options import OPTIONS_BY_DEST
from vnet_accept.perf.rules import REFERENCE_T4_SOURCE, reference_t4_thresholds
from vnet_accept.reference import (
    PORT_310_CHIP_FPS,
    PORT_310_ERROR_PCT,
    PORT_310_ERROR_SOURCE,
    PORT_310_INCORRECT,
    PORT_310_TOTAL,
    PUBLISHED_ERROR_PCT,
    PUBLISHED_ERROR_SOURCE,
    T4_FPS_BASIS,
    T4_SETUP,
    TEST_SPLIT_SCANS,
    TEST_SPLIT_TILES,
    TOLERANCE_PP,
    AccuracyReference,
)
from vnet_accept.report.modelzoo import MODELZOO_FILE, Status, format_modelzoo_level
from vnet_accept.report.notjudged import NotJudgedGroup, reason_numbers, short_reason
from vnet_accept.report.record import accuracy_subject
from vnet_accept.tolerances import REDUCED_SPATIAL_WHY

REPORT_MD = "gate-report.md"
DASH = "—"
BN_MODE_NAMES = ("batch", "instance", "running")
_BN_IN_TEXT = re.compile(r"bn(?:_mode)?=(\w+)")
_BS = re.compile(r"^bs(\d+)$")


# --- small formatting helpers ---------------------------------------------------------------------------------
def cell(value: Any) -> str:
    """A Markdown table cell: no pipes or newlines inside, ``—`` for nothing."""
    if value is None or value == "":
        return DASH
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ").strip()


def row(*cells: Any) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [row(*header), "|" + "|".join("---" for _ in header) + "|", *(row(*r) for r in rows)]


def num(value: Any, spec: str = ".4g", suffix: str = "") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DASH if value is None else str(value)
    return f"{value:{spec}}{suffix}"


_HEX = re.compile(r"^[0-9a-f]{32,}$")


def short_value(value: Any, limit: int = 160) -> str:
    """A measured value for a table cell: ints with separators, hashes shortened, dicts as ``key=value``."""
    if isinstance(value, bool) or value is None:
        text = DASH if value is None else str(value)
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value[:12] + "…" if _HEX.match(value) else value
    elif isinstance(value, Mapping):
        text = "; ".join(f"{k}={short_value(v, limit)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(short_value(v, limit) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


#: Key of a criterion's copy (made by :func:`render_markdown`) holding its skip reason's number in "What was not
#: judged and why": a table cell says "not judged [n]" and the reason is written out once, there.
REASON_REF = "_reason_ref"


def verdict_text(c: Mapping[str, Any], with_reason: bool = False) -> str:
    v = c.get("verdict", "error")
    word = {"pass": "**PASS**", "fail": "**FAIL**", "skip": "skipped", "error": "**ERROR**"}.get(v, v)
    reason = c.get("reason") or ""
    if v == "skip" and c.get(REASON_REF):
        return f"not judged [{c[REASON_REF]}]: {short_reason(reason)}"
    if v == "skip":
        return f"not judged: {reason}" if reason else "not judged"
    if with_reason and reason and v in ("fail", "error"):
        return f"{word}: {reason}"
    return word


def _segments(cid: str) -> list[str]:
    return cid.split("[", 1)[0].split(".")


def by_family(criteria: Sequence[Mapping[str, Any]], family: str) -> list[Mapping[str, Any]]:
    return [c for c in criteria if _segments(c["id"])[0] == family]


def bn_mode_of(c: Mapping[str, Any]) -> str:
    for s in _segments(c["id"]):
        if s in BN_MODE_NAMES:
            return s
    m = _BN_IN_TEXT.search(c.get("basis", "") + " " + c.get("description", ""))
    return m.group(1) if m else DASH


def batch_of(c: Mapping[str, Any]) -> int | None:
    for s in _segments(c["id"]):
        m = _BS.match(s)
        if m:
            return int(m.group(1))
    bs = (c.get("details") or {}).get("batch_size")
    return bs if isinstance(bs, int) else None


# --- sections -------------------------------------------------------------------------------------------------
def _accuracy_source(cid: str) -> str:
    """``accuracy.error_rate.om_bs16`` -> ``om_bs16``."""
    return ".".join(_segments(cid)[2:]) or cid


def _source_order(c: Mapping[str, Any]) -> tuple[int, int, str]:
    src = _accuracy_source(c["id"])
    rank = 0 if src.startswith("om") else 1 if src.startswith("onnx") else 2
    return rank, batch_of({"id": src.replace("_", ".")}) or 0, src


def _ci_cell(ci: Any, volumes: Any) -> str | None:
    """The interval, or why there is none (reports written before the minimum existed carry one for 2 volumes)."""
    why = ci_withheld(volumes) if isinstance(volumes, int) else None
    if why:
        return f"{DASH} ({why})"
    return f"{ci[0]:.4f} – {ci[1]:.4f} %" if isinstance(ci, (list, tuple)) and len(ci) == 2 else None


def _accuracy_cells(c: Mapping[str, Any]) -> dict[str, Any]:
    """The cells every accuracy row has, whatever rule judged it."""
    d = c.get("details") or {}
    volumes = d.get("volumes", d.get("uids_used"))
    counts = (f"{d['incorrect']:,} / {d['total']:,}" if isinstance(d.get("incorrect"), int)
              and isinstance(d.get("total"), int) else None)
    return {"source": f"`{_accuracy_source(c['id'])}`", "error": num(c.get("measured"), ".4f", " %"),
            "counts": counts, "ci": _ci_cell(d.get("ci95_pct"), volumes),
            "tiles": f"{d.get('tiles', DASH)} / {volumes if volumes is not None else DASH}" if d else None,
            "threshold": c.get("threshold"), "verdict": verdict_text(c, True), "basis": c.get("basis")}


def _reference_sentence(ref: AccuracyReference) -> str:
    """Where the error rate judged against comes from."""
    if ref.published_error_pct == PUBLISHED_ERROR_PCT:
        return f"{PUBLISHED_ERROR_PCT:g} % is {PUBLISHED_ERROR_SOURCE}."
    return (f"{ref.published_error_pct:g} % was given with `--reference-error` ({PUBLISHED_ERROR_PCT:g} % is "
            f"{PUBLISHED_ERROR_SOURCE}).")


def accuracy_section(report: Mapping[str, Any], figures: Mapping[str, Any]) -> list[str]:
    settings = report.get("settings") or {}
    ref = AccuracyReference(float(settings.get("reference_error") or PUBLISHED_ERROR_PCT),
                            float(settings.get("tolerance_pp") if settings.get("tolerance_pp") is not None
                                  else TOLERANCE_PP))
    family = by_family(report.get("criteria", []), "accuracy")
    crits = sorted((c for c in family if _segments(c["id"])[1:2] == ["error_rate"]), key=_source_order)
    checks = [c for c in family if _segments(c["id"])[1:2] != ["error_rate"]]
    # The self-test's model is held to its own ceiling, not to the published rule: its rows get no view against it.
    port = [c for c in crits if accuracy_subject(c) == "port"]
    selftest = [c for c in crits if accuracy_subject(c) == "selftest"]
    lines = ["## Accuracy", "",
             f"Rule in force for the port: |error − {ref.published_error_pct:g} %| ≤ {ref.tolerance_pp:g} percentage "
             f"point (`--reference-error`, `--tolerance-pp`); {_reference_sentence(ref)} Error rate = voxels whose "
             "arg-max class differs from the lung mask / all voxels of all kept 64×80×80 tiles (tiles whose mask is "
             "empty are not evaluated), pooled over the test split. The relative and point-accuracy views are shown "
             "so nobody has to guess the unit of \"within 1 %\". \"The reference port\" is the VNet port to the "
             "Ascend 310 published before this one: its figures are quoted for comparison, never measured here.", ""]
    header = ("source", "error rate", "incorrect / total voxels", f"Δ vs {ref.published_error_pct:g} % (pp)",
              "relative change", f"point accuracy (published {100 - ref.published_error_pct:.3f} %)",
              "95 % CI (bootstrap over volumes)", "tiles / volumes", "threshold", "verdict", "basis")
    rows: list[list[Any]] = []
    for c in port:
        cells = _accuracy_cells(c)
        measured = c.get("measured")
        views = (c.get("details") or {}).get("views") or (
            ref.views(measured) if isinstance(measured, (int, float)) else {})
        rows.append([cells["source"], cells["error"], cells["counts"], num(views.get("abs_diff_pp"), "+.4f"),
                     num(views.get("relative_change_pct"), "+.1f", " %"),
                     num(views.get("point_accuracy_pct"), ".4f", " %"), cells["ci"], cells["tiles"],
                     cells["threshold"], cells["verdict"], cells["basis"]])
    if not port:
        rows.append(["(none)", DASH, DASH, DASH, DASH, DASH, DASH, DASH, DASH,
                     "not run: no error rate of the port in this run (the accuracy checks are deselected, e.g. by "
                     "`-m`/`-k`, or not installed in this version)", DASH])
    published = ref.views(PORT_310_ERROR_PCT)
    rows.append(["reference port, Ascend 310 (published; not measured here)", f"{PORT_310_ERROR_PCT:.4f} %",
                 f"{PORT_310_INCORRECT:,} / {PORT_310_TOTAL:,}", num(published["abs_diff_pp"], "+.4f"),
                 num(published["relative_change_pct"], "+.1f", " %"),
                 num(published["point_accuracy_pct"], ".4f", " %"), DASH, f"{TEST_SPLIT_TILES} / {TEST_SPLIT_SCANS}",
                 DASH, "reference", PORT_310_ERROR_SOURCE])
    lines += table(header, rows)
    lines.append("")
    if selftest:
        lines += ["The self-test's own model (a narrow VNet trained on synthetic scans and shipped with the gate; not "
                  "the port) is held to its own threshold, so no view against the published figure applies to it:",
                  ""]
        lines += table(("source", "error rate", "incorrect / total voxels", "95 % CI (bootstrap over volumes)",
                        "tiles / volumes", "threshold", "verdict", "basis"),
                       [[x["source"], x["error"], x["counts"], x["ci"], x["tiles"], x["threshold"], x["verdict"],
                         x["basis"]] for x in map(_accuracy_cells, selftest)])
        lines.append("")
    if checks:
        lines += ["Checks of the accuracy chain itself (counts, layouts, batch sizes, runners):", "",
                  *generic_table(checks), ""]
    lines += _figure_lines(figures, "per_volume_error", "Per-volume error rates")
    lines += _figure_lines(figures, "worst_volume", "Worst volume: central slices, disagreement overlaid")
    return lines


def _t4_cell(d: Mapping[str, Any], bs: int | None, in_force: Mapping[int, Any]) -> str:
    """The T4 threshold a row was (or, not judged, would be) held to, with its statistic and source."""
    if isinstance(d.get("t4_fps"), (int, float)):
        fps, basis, source = d["t4_fps"], d.get("t4_basis"), d.get("t4_source") or ""
    elif bs in in_force:
        fps, basis, source = in_force[bs].fps, in_force[bs].basis, in_force[bs].source
    else:
        return DASH
    source = "the reference port's published table" if source == REFERENCE_T4_SOURCE else Path(source).name or None
    return f"{fps:.5g} ({', '.join(filter(None, (basis, source)))})"


def _t4_sentence(settings: Mapping[str, Any]) -> str:
    if settings.get("t4_logs"):
        return (f"T4 thresholds: from `--t4-logs` ({settings['t4_logs']}), T4 fps = 1000·bs / GPU-compute time "
                f"(its statistic per `--perf-statistic` {settings.get('perf_statistic') or 'port'}); a row without a "
                "value is a batch size the logs were not read for.")
    by_basis: dict[str, list[str]] = {}
    for bs, basis in sorted(T4_FPS_BASIS.items()):
        by_basis.setdefault(basis, []).append(f"bs{bs}")
    bases = " and ".join(f"its {basis} at {', '.join(sizes)}" for basis, sizes in by_basis.items())
    mixed = " (the table mixes the two statistics)" if len(by_basis) > 1 else ""
    return (f"T4 thresholds: the reference port's published T4 table ({T4_SETUP}); T4 fps = 1000·bs / GPU-compute "
            f"time, {bases}{mixed}; `--t4-logs` replaces the table.")


def _tier_sentence(tier: Mapping[str, Any]) -> str:
    head = f"Tier criterion `{tier['id']}`"
    if tier.get("verdict") == "skip":
        ref = f" [{tier[REASON_REF]}]" if tier.get(REASON_REF) else ""
        why = short_reason(tier.get("reason") or "") if ref else tier.get("reason")
        return f"{head}: not judged{ref}" + (f" ({why})." if why else ".")
    measured = f"tier {tier['measured']}, " if tier.get("measured") else ""
    return f"{head}: {measured}{verdict_text(tier, True)}."


def performance_section(report: Mapping[str, Any], figures: Mapping[str, Any],
                        perf_status: Status | None) -> list[str]:
    crits = report.get("criteria", [])
    settings = report.get("settings") or {}
    in_force = {} if settings.get("t4_logs") else reference_t4_thresholds()
    throughput = sorted((c for c in crits if _segments(c["id"])[:2] == ["perf", "throughput"]),
                        key=lambda c: batch_of(c) or 0)
    lines = ["## Performance", "",
             "Rule: card fps > T4 fps at every batch size (bs1 and bs16 authoritative). Card fps = "
             "per-chip throughput × chips per card (Ascend 310: 4 chips; 310P: 1); the NPU tools measure one chip. "
             "Placement by the lower card/T4 ratio at bs1 and bs16: < 1.0 Research, 1.0–1.2 Official, > 1.2 "
             "Benchmark (\"Perfect\").", "", _t4_sentence(settings), ""]
    header = ("batch size", "310/310P per chip (fps, basis)", "chips per card", "card fps",
              "T4 fps threshold (statistic, source)", "card / T4", "verdict", "NPU figures from")
    rows: list[list[Any]] = []
    for c in throughput:
        d = c.get("details") or {}
        chip = num(d.get("chip_fps"), ".5g")
        if d.get("statistic") and chip != DASH:
            chip += f" ({d['statistic']})"
        ratio = d.get("ratio")
        rows.append([f"bs{batch_of(c)}" if batch_of(c) else c["id"], chip, d.get("chips_per_card"),
                     num(d.get("card_fps", c.get("measured")), ".2f"), _t4_cell(d, batch_of(c), in_force),
                     num(ratio, ".2f", "×"), verdict_text(c, True), d.get("source") or c.get("basis")])
    if not throughput:
        perf_skips = [c for c in crits if _segments(c["id"])[0] == "perf"]
        reason = (perf_skips[0].get("reason") if perf_skips else None) or (
            "no throughput criterion in this run (NPU checks not selected or not installed)")
        rows.append(["(none)", DASH, DASH, DASH, DASH, DASH, f"not run: {reason}", DASH])
    lines += table(header, rows)
    lines.append("")
    tier = next((c for c in crits if _segments(c["id"])[:2] == ["perf", "tier"]), None)
    if perf_status is not None:
        judged = "" if perf_status.judged else " (for want of evidence)"
        lines.append(f"Placement: {perf_status.reason}. `PerfStatus:{perf_status.value}`{judged}.")
    if tier is not None:
        lines.append(_tier_sentence(tier))
    port = ", ".join(f"bs{bs} {fps:g} → {4 * fps:.2f}" for bs, fps in PORT_310_CHIP_FPS.items())
    lines += ["", f"For comparison (published, not measured here): the reference port's 310 figures per chip → card: "
              f"{port} fps.", ""]
    lines += _figure_lines(figures, "fps_per_batch", "Card fps per batch size against the T4 thresholds")
    return lines


def _comparison(c: Mapping[str, Any]) -> Mapping[str, Any]:
    return (c.get("details") or {}).get("comparison") or {}


def _flips(c: Mapping[str, Any]) -> str:
    comp = _comparison(c)
    if isinstance(comp.get("flips"), int) and isinstance(comp.get("voxels"), int):
        return f"{comp['flips']:,} / {comp['voxels']:,}"
    return DASH


def _compared(c: Mapping[str, Any]) -> tuple[int, tuple[int, ...]] | None:
    """(samples compared, their spatial size) of a batched comparison, from its shape (N, D, H, W, 2)."""
    shape = _comparison(c).get("shape")
    if isinstance(shape, (list, tuple)) and len(shape) == 5:
        return int(shape[0]), tuple(int(s) for s in shape[1:4])
    return None


def _batch_cell(c: Mapping[str, Any]) -> str:
    """``bs16 (first 8 compared)`` when only part of the batch was also run alone."""
    bs, compared = batch_of(c), _compared(c)
    if bs is None:
        return DASH
    return f"bs{bs} (first {compared[0]} compared)" if compared and compared[0] < bs else f"bs{bs}"


def _reduced_sizes_text(criteria: Sequence[Mapping[str, Any]]) -> str:
    sizes = {}
    for c in criteria:
        compared = _compared(c)
        if compared and bn_mode_of(c) in REDUCED_SPATIAL_WHY:
            sizes.setdefault(bn_mode_of(c), "×".join(map(str, compared[1])))
    if not sizes:
        return ""
    listed = "; ".join(f"{mode} {size} ({REDUCED_SPATIAL_WHY[mode]})" for mode, size in sorted(sizes.items()))
    return (f" Seeded CT-like inputs at a reduced size per BN mode, the smallest at which its semantics is well "
            f"defined: {listed}.")


def parity_section(report: Mapping[str, Any], figures: Mapping[str, Any]) -> list[str]:
    crits = report.get("criteria", [])
    parity = by_family(crits, "parity")
    invariance = by_family(crits, "batch_invariance")
    dependence = by_family(crits, "batch_dependence_detected")
    lines = ["## Parity and batch invariance", "",
             "Parity: two runners on the same input in the same batch-norm semantics (`--bn-mode`: `batch` = "
             "statistics of the batch as given, as upstream; `instance` = per-sample; `running` = stored running "
             "statistics). Measured = max |Δ log-probability| over all voxels and both classes; label flips = "
             "voxels whose arg-max differs.", ""]
    parity.sort(key=lambda c: (bn_mode_of(c), c["id"]))
    invariance.sort(key=lambda c: (_segments(c["id"])[1:3], batch_of(c) or 0))
    dependence.sort(key=lambda c: (_segments(c["id"])[1:2], batch_of(c) or 0))
    rows = [[f"`{c['id']}`", bn_mode_of(c), num(c.get("measured"), ".3g"), _flips(c), c.get("threshold"),
             verdict_text(c, True), c.get("basis")] for c in parity]
    if not parity:
        rows.append(["(none)", DASH, DASH, DASH, DASH, "not run: no parity criterion in this run", DASH])
    lines += table(("criterion", "BN mode", "max abs Δ log-prob", "label flips", "threshold", "verdict",
                    "basis (runners, dtype, input)"), rows)
    lines += ["", "Batch invariance (BN modes that promise it): samples run one at a time vs the same samples inside "
              "a batch of N — every sample of the batch, or its first k where the batch column says \"first k "
              "compared\" — so label flips count over the compared samples' voxels (k × the size named next)."
              + _reduced_sizes_text([*invariance, *dependence]), ""]
    rows = []
    for c in invariance:
        seg = _segments(c["id"])
        rows.append([seg[1] if len(seg) > 1 else DASH, bn_mode_of(c), _batch_cell(c),
                     num(c.get("measured"), ".3g"), _flips(c), c.get("threshold"), verdict_text(c, True),
                     c.get("basis")])
    if not invariance:
        rows.append([DASH, DASH, DASH, DASH, DASH, DASH, "not run: no batch-invariance criterion in this run", DASH])
    lines += table(("runner", "BN mode", "batch", "max abs Δ log-prob", "label flips", "threshold", "verdict",
                    "basis"), rows)
    if dependence:
        lines += ["", "Batch dependence of `bn_mode=batch` (the reference port's semantics; the gate must see it):",
                  ""]
        rows = []
        for c in dependence:
            seg = _segments(c["id"])
            rows.append([seg[1] if len(seg) > 1 else DASH, _batch_cell(c),
                         num(c.get("measured"), ".3g"), _flips(c), c.get("threshold"), verdict_text(c, True)])
        lines += table(("runner", "batch", "max abs Δ log-prob", "label flips", "detected when", "verdict"), rows)
    lines.append("")
    lines += _figure_lines(figures, "parity_margins", "Measured difference against each threshold")
    return lines


SECTION_FAMILIES = ("accuracy", "perf", "parity", "batch_invariance", "batch_dependence_detected")


def generic_table(criteria: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for c in criteria:
        measured = c.get("measured")
        shown = f"{short_value(measured)} {c.get('units') or ''}".strip() if measured is not None else DASH
        rows.append([f"`{c['id']}`", c.get("description"), shown, short_value(c.get("threshold") or None, 200),
                     verdict_text(c, True), c.get("basis")])
    return table(("criterion", "what it asserts", "measured", "threshold", "verdict", "basis"), rows)


def other_section(report: Mapping[str, Any]) -> list[str]:
    others = [c for c in report.get("criteria", []) if _segments(c["id"])[0] not in SECTION_FAMILIES]
    if not others:
        return []
    return ["## Other criteria", "", *generic_table(others), ""]


def modelzoo_section(statuses: Sequence[Status]) -> list[str]:
    rows = [[f"`{s.line()}`", "yes" if s.judged else "**no** — NOK for want of evidence", s.reason]
            for s in statuses]
    return ["## modelzoo_level.txt", "", f"Written to `{MODELZOO_FILE}`, derived from the verdicts above:", "",
            "```text", format_modelzoo_level(statuses).rstrip("\n"), "```", "",
            *table(("line", "judged", "why"), rows), "",
            "A skipped criterion never makes a status OK. A status nothing could decide is written as `NOK` (the "
            "file's `Key:Value` format has no \"unknown\"): read it as \"not demonstrated by this run\", not as a "
            "measured failure — see below what was missing.", ""]


def not_judged_section(groups: Sequence[NotJudgedGroup], absent_families: Sequence[str]) -> list[str]:
    lines = ["## What was not judged and why", ""]
    if not groups and not absent_families:
        return lines + ["Every criterion of this run was judged.", ""]
    numbers = reason_numbers(groups)
    lines += ["Each reason once, numbered as the tables above refer to it (\"not judged [n]\").", ""]
    for g in groups:
        n = len(g.criteria)
        lines += [f"### Missing: {g.missing.label} — {n} criteri{'a' if n != 1 else 'on'}", "",
                  f"How to provide it: {g.missing.provide}.", ""]
        for reason in g.reasons:
            ids = [c["id"] for c in g.criteria if (c.get("reason") or "no reason given") == reason]
            shown = ", ".join(f"`{i}`" for i in ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")
            lines.append(f"- [{numbers[reason]}] {reason} ({shown})")
        lines.append("")
    if absent_families:
        lines += ["### Families with no criterion in this run", ""]
        lines += [f"- {f}" for f in absent_families]
        lines.append("")
    return lines


#: Labels written by hand where the option's help does not cut down to one (:func:`_option_label`).
SETTING_LABELS = {
    "vnet_weights": "checkpoint under test (`--weights`)",
    "luna16_root": "dataset (`--luna16`)",
    "test_uids": "test-split UID file (`--test-uids`)",
    "bn_mode": "BN semantics of the export and the reference (`--bn-mode`)",
    "reference_error": "published error rate, % (`--reference-error`)",
    "tolerance_pp": "allowed |error − reference|, percentage points (`--tolerance-pp`)",
    "soc_version": "Ascend SoC, as ATC's --soc_version (`--soc-version`)",
}
_DEFAULT_DISPLAY: dict[str, str] = {
    "vnet_weights": "seeded stand-in weights (no `--weights`: accuracy thresholds cannot be judged)",
    "luna16_root": "synthetic LUNA16-like dataset (no `--luna16`)",
    "test_uids": "the dataset's own list (no `--test-uids`)",
}


def help_label(text: str) -> str:
    """An option's help cut to a label: its first clause - up to a ';' or a ': ' outside parentheses, where the
    details or the list of choices begin - without a parenthetical at its end. Cutting at a bracket instead left
    labels such as "NPU inference tool: ais_bench" that name one choice as if it were the setting."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and (ch == ";" or text.startswith(": ", i)):
            text = text[:i]
            break
    return re.sub(r"\s*\([^()]*\)$", "", text.strip())


def _option_label(key: str) -> str:
    opt = OPTIONS_BY_DEST.get(key)
    return f"{help_label(opt.help)} (`{opt.flag}`)" if opt else f"`{key}`"


def _chain_backend(report: Mapping[str, Any]) -> str | None:
    """The backend the port's accuracy chain ran (what ``--backend auto`` chose), as its error rate recorded it."""
    for c in by_family(report.get("criteria", []), "accuracy"):
        backend = ((c.get("details") or {}).get("throughput") or {}).get("backend")
        if backend and accuracy_subject(c) == "port":
            return backend
    return None


def _value_note(key: str, value: Any, report: Mapping[str, Any]) -> str:
    """What a setting's value meant in this run, where the value alone does not say."""
    if key == "backend" and value == "auto" and _chain_backend(report):
        return f" (chose {_chain_backend(report)})"
    if key == "perf_statistic" and value in STATISTIC_HELP:
        return f" ({STATISTIC_HELP[value]})"
    return ""


def settings_section(report: Mapping[str, Any]) -> list[str]:
    settings = report.get("settings") or {}
    rows = []
    for key in sorted(settings, key=lambda k: (k not in SETTING_LABELS, list(SETTING_LABELS).index(k)
                                               if k in SETTING_LABELS else 0, k)):
        value = settings[key]
        if value in (None, "", []):
            rows.append([SETTING_LABELS.get(key) or _option_label(key), _DEFAULT_DISPLAY.get(key, "not set")])
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        rows.append([SETTING_LABELS.get(key) or _option_label(key), f"`{shown}`" + _value_note(key, value, report)])
    return ["## Settings in force", "", *table(("setting", "value"), rows), ""]


#: The toolchain facts criteria record in their details: the Ascend SoC judged, and the GPU and TensorRT version of
#: the T4 figures (the published table's or the --t4-logs' own).
_TOOL_KEYS = {"soc_version": "Ascend SoC", "t4_gpu": "GPU of the T4 figures",
              "t4_tensorrt_version": "TensorRT of the T4 figures"}


def _recorded_tool_versions(report: Mapping[str, Any]) -> dict[tuple[str, str], list[str]]:
    """Toolchain facts the criteria recorded in their details (the SoC, the T4 figures' GPU and TensorRT), with who
    recorded them."""
    found: dict[tuple[str, str], list[str]] = {}
    for c in report.get("criteria", []):
        details = c.get("details") or {}
        for key in _TOOL_KEYS:
            if details.get(key) not in (None, ""):
                found.setdefault((key, str(details[key])), []).append(c["id"])
    return found


def provenance_section(report: Mapping[str, Any]) -> list[str]:
    prov = report.get("provenance") or {}
    machine = prov.get("machine") or {}
    versions = prov.get("versions") or {}
    toolchain = prov.get("toolchain") or {}
    rows = [["time (UTC)", prov.get("time_utc")],
            ["command line", " ".join(map(str, prov.get("command_line") or [])) or None],
            ["working directory", prov.get("cwd")],
            ["machine", " ".join(str(machine[k]) for k in ("system", "release", "machine") if machine.get(k))
             + (f", {machine.get('cpu_count')} CPUs" if machine.get("cpu_count") else "") or None],
            ["host", machine.get("node")], ["Python", prov.get("python")]]
    rows += [[name, version] for name, version in versions.items()]
    rows += [[name, value] for name, value in toolchain.items()]
    rows += [[f"{_TOOL_KEYS[key]} (recorded by {', '.join(ids[:2])}{' …' if len(ids) > 2 else ''})", value]
             for (key, value), ids in _recorded_tool_versions(report).items()]
    return ["## Provenance", "", *table(("item", "value"), rows), ""]


def _figure_lines(figures: Mapping[str, Any], name: str, title: str) -> list[str]:
    fig = figures.get(name)
    if fig is None:
        return []
    if fig.get("file"):
        return [f"![{title}]({fig['file']})", ""]
    return [f"_No figure \"{title}\": {fig.get('reason', 'nothing to draw')}._", ""]


def header_section(report: Mapping[str, Any], statuses: Sequence[Status]) -> list[str]:
    from vnet_accept.report.readiness import REQUIRED_TEXT, readiness

    gate = report.get("gate") or {}
    ready = readiness(report.get("criteria", []), report.get("settings") or {})
    lines = ["# VNet PyTorch → ONNX → Ascend OM: vnet-accept gate report", ""]
    if report.get("complete") is False:
        why = gate.get("explanation") or "the run did not finish"
        lines += [f"> **INCOMPLETE — not a gate result.** {why}. Criteria that did not run are missing below; do "
                  "not file this report.", ""]
    elif report.get("complete") is None:
        lines += ["> Written from a plain `pytest --gate-report` run, not finalised by `vnet-accept gate`.", ""]
    exit_text = f" Exit status {gate['exit_code']}." if "exit_code" in gate else ""
    lines += [f"**Verdict: {ready.headline}** — {ready.counts_text()}.{exit_text}", ""]
    if ready.verdict == "not gated":
        reasons = [f"- {why}{';' if i < len(ready.reasons) - 1 else '.'}" for i, why in enumerate(ready.reasons)]
        lines += ["The port was **not gated**, so this report cannot be filed: every criterion judged here passed, "
                  "but", "", *reasons, "",
                  f"A report is ready to file when the trained checkpoint is judged and so are {REQUIRED_TEXT}.",
                  ""]
    elif ready.verdict == "ready":
        lines += [f"Gated: the trained checkpoint was judged, and so were {REQUIRED_TEXT}.", ""]
    if gate.get("tests_deselected"):
        ran = gate.get("tests_selected")
        lines += [f"Selection: {ran} test{'s' if ran != 1 else ''} selected, {gate['tests_deselected']} deselected "
                  "(`-m`/`-k`); the criteria of the deselected tests are not in this report.", ""]
    judged_on = gate.get("judged_on") or []
    if judged_on:
        lines += ["Judged on: " + "; ".join(judged_on) + ".", ""]
    lines.append("`modelzoo_level.txt`: " + ", ".join(
        f"`{s.line()}`" + ("" if s.judged else " (not judged)") for s in statuses)
        + (" — not gated: nothing was demonstrated about the port." if ready.verdict == "not gated" else "."))
    bad = [c for c in report.get("criteria", []) if c.get("verdict") in ("fail", "error")]
    if bad:
        lines += ["", "Why it failed:", ""]
        lines += [f"- `{c['id']}` ({c['verdict']}): {short_value(c.get('measured'))} {c.get('units') or ''}; "
                  f"threshold {c.get('threshold') or DASH} — {c.get('reason') or 'no reason recorded'}" for c in bad]
    render_errors = report.get("render_errors") or []
    if render_errors:
        lines += ["", "Not rendered (the verdicts above are unaffected; `vnet-accept report DIR` tries again):", ""]
        lines += [f"- `{e.get('file')}`: {e.get('error')}" for e in render_errors]
    failed = gate.get("failed_tests") or []
    if failed:
        lines += ["", "Tests that failed without recording a criterion:", ""]
        lines += [f"- `{f['nodeid']}`: {f.get('reason', '')}" for f in failed]
    lines.append("")
    return lines


def render_markdown(report: Mapping[str, Any], statuses: Sequence[Status], groups: Sequence[NotJudgedGroup],
                    figures: Mapping[str, Any], absent_families: Sequence[str] = ()) -> str:
    """The whole ``gate-report.md``. ``figures``: name -> ``{"file": "x.png"}`` or ``{"reason": "..."}``."""
    perf = next((s for s in statuses if s.key == "PerfStatus"), None)
    numbers = reason_numbers(groups)
    report = {**report, "criteria": [  # copies whose skip cells refer to the reason listed once, at the end
        {**c, REASON_REF: numbers.get(c.get("reason") or "no reason given")} if c.get("verdict") == "skip" else c
        for c in report.get("criteria", [])]}
    lines = [*header_section(report, statuses),
             *accuracy_section(report, figures),
             *performance_section(report, figures, perf),
             *parity_section(report, figures),
             *other_section(report),
             *modelzoo_section(statuses),
             *not_judged_section(groups, absent_families),
             *settings_section(report),
             *provenance_section(report)]
    files = report.get("files") or []
    if files:
        lines += ["## Files", "", *[f"- `{f}`" for f in files], ""]
    return "\n".join(lines).rstrip("\n") + "\n"
