"""The error rate of a run against the published figure, and whether every output sits under its own tile's name
(SPEC §6, §9). The evidence is a post-processing report (:class:`vnet_accept.results.postprocess.PostprocessReport`)
of a result folder or of outputs streamed from a run.

``accuracy.error_rate.<source>`` records one details shape whoever measured it (the contract in
:mod:`vnet_accept.report.record`): ``subject`` says whose model it is (``"port"`` or ``"selftest"``), so the report
never shows the self-test's model as the port's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vnet_accept.data.uids import short_uid
from vnet_accept.errors import DataError
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.reference import AccuracyReference

ReportOf = Callable[[Path], Any]  # folder -> PostprocessReport; raises DataError when the folder cannot be judged


def threshold_text(reference: AccuracyReference) -> str:
    return f"|error − {reference.published_error_pct}| ≤ {reference.tolerance_pp} pp"


def rule_threshold(reference_error: float, tolerance_pp: float) -> str:
    """:func:`threshold_text` from the gate's options (``--reference-error``, ``--tolerance-pp``): what a criterion
    not judged here would be held to."""
    return threshold_text(AccuracyReference(reference_error, tolerance_pp))


def not_judged_reason(uses_real_weights: bool, synthetic: bool) -> str | None:
    """Why an error rate means nothing here, or None: stand-in weights, or the synthetic dataset. The hint asks
    only for what is missing."""
    if not uses_real_weights:
        also = " and --luna16-root/--test-uids" if synthetic else ""
        return (f"seeded stand-in weights: error rate not meaningful; pass --vnet-weights vnet_model_best.pth.tar"
                f"{also} to judge it")
    if synthetic:
        return ("synthetic dataset: error rate not meaningful; pass --luna16-root (and --test-uids) to judge the "
                "trained weights on LUNA16")
    return None


def error_rate_details(report: Any, subject: str, worst_npz: str | Path | None = None) -> dict[str, Any]:
    """The details every ``accuracy.error_rate.<source>`` criterion records. ``views`` (against the published
    0.355 %) only for the port: the self-test's model is held to its own ceiling, not to the published figure."""
    r = report.result
    views = {"views": report.views} if subject == "port" else {}
    details = dict(subject=subject, incorrect=r.incorrect, total=r.total, tiles=r.tiles, volumes=r.volumes,
                   uids_listed=report.uids_listed, uids_used=report.uids_used, **views,
                   ci95_pct=list(r.ci95_pct) if r.ci95_pct else None,  # None: too few volumes for an interval
                   per_volume=[v.to_dict() for v in r.per_volume], dice=r.dice, iou=r.iou,
                   mean_volume_dice=r.mean_volume_dice, results=report.source, port_line=r.port_line())
    if worst_npz is not None:
        worst = r.worst_volume()
        details["worst_volume"] = {"uid": worst.uid, "error_rate_pct": worst.error_rate_pct, "npz": str(worst_npz)}
    return details


def error_rate(cid: str, description: str, report: Any, reference: AccuracyReference, *, basis: str,
               subject: str = "port", worst_npz: str | Path | None = None, not_judged: str | None = None,
               **extra: Any) -> Criterion:
    """``accuracy.error_rate.<source>``: |pooled error - published| <= tolerance (percentage points). With
    ``not_judged`` (stand-in weights, synthetic data) everything is measured and recorded, and the verdict is a
    skip saying why."""
    r = report.result
    views = reference.views(r.error_rate_pct)
    passed = reference.passes(r.error_rate_pct)
    reason = (f"{r.port_line()}; {r.ci_text()}; relative change {views['relative_change_pct']:+.1f} %, "
              f"point accuracy {views['point_accuracy_pct']:.4f} %")
    message = (f"{'PASS' if passed else 'FAIL'} {cid}: error {r.error_rate_pct:.4f} % vs "
               f"{reference.published_error_pct} %: |Δ| {abs(views['abs_diff_pp']):.4f} pp "
               f"{'≤' if passed else '>'} {reference.tolerance_pp} pp; {r.port_line()}")
    c = judged(cid, description, passed, measured=r.error_rate_pct, units="%", threshold=threshold_text(reference),
               basis=basis, reason=reason, message=message, **error_rate_details(report, subject, worst_npz), **extra)
    if not_judged:
        return c.not_judged(f"{not_judged} (measured {r.error_rate_pct:.4f} %)")
    return c


def error_rate_at_most(cid: str, description: str, report: Any, max_error_pct: float, *, basis: str,
                       subject: str = "selftest", **extra: Any) -> Criterion:
    """An error rate held to an absolute ceiling (the self-test's model: it segments, so its error is small):
    ``accuracy.error_rate.selftest_model`` and ``selftest.trained_model.error_rate``."""
    r = report.result
    passed = r.error_rate_pct <= max_error_pct
    per_volume = ", ".join(f"{short_uid(v.uid)}: {v.error_rate_pct:.3f} %" for v in r.per_volume)
    message = (f"{'PASS' if passed else 'FAIL'} error rate {r.error_rate_pct:.4f} % {'<=' if passed else '>'} "
               f"{max_error_pct} %; {r.port_line()}; per volume {per_volume}; Dice {r.dice:.4f}")
    return judged(cid, description, passed, measured=r.error_rate_pct, units="%", threshold=f"<= {max_error_pct} %",
                  basis=basis, reason=f"{r.port_line()}; Dice {r.dice:.4f}", message=message,
                  **error_rate_details(report, subject), **extra)


def unreadable(cid: str, description: str, exc: DataError, *, units: str = "", threshold: str = "",
               basis: str = "") -> Criterion:
    """The results cannot be judged (a missing, truncated, NaN or misnamed output; inputs of another run): the
    criterion fails with the error, which names every file and tile."""
    lines = str(exc).splitlines()
    return judged(cid, description, False, units=units, threshold=threshold, basis=basis, reason=lines[0],
                  message=f"FAIL {str(exc)}", problems=lines[1:])


def results_error_rate(cid: str, description: str, folder: Path, report_of: ReportOf,
                       reference: AccuracyReference, *, basis: str, subject: str = "port",
                       not_judged: str | None = None, **extra: Any) -> Criterion:
    """``accuracy.error_rate.<source>`` of a result folder: the folder is read and validated by ``report_of``
    (post-processing); a folder that cannot be judged fails here, naming the files."""
    try:
        report = report_of(folder)
    except DataError as exc:
        return unreadable(cid, description, exc, units="%", threshold=threshold_text(reference), basis=basis)
    return error_rate(cid, description, report, reference, basis=basis, subject=subject, not_judged=not_judged,
                      **extra)


def placement_message(misplaced: Any) -> str:
    """The verdict line of ``*.tiles_in_place`` (first line: verdict and cause), then one line per tile."""
    if not misplaced:
        return ("PASS no output fits another tile's mask better than its own (tiles with error above "
                "max(2 %, 5 × the median tile's) cross-checked against each other's masks)")
    lines = [f"FAIL {len(misplaced)} output(s) hold another tile's output - outputs swapped between tiles, or "
             "matched to tiles by position: check how result files are named and matched to the manifest"]
    lines += [f"  {m.line()}" for m in misplaced[:8]]
    if len(misplaced) > 8:
        lines.append(f"  … and {len(misplaced) - 8} more")
    return "\n".join(lines)


def tiles_in_place(cid: str, description: str, folder: Path, report_of: ReportOf, *, basis: str,
                   not_judged: str | None = None) -> Criterion:
    """``*.tiles_in_place``: no output fits another tile's mask far better than its own (swapped files, outputs
    matched by position). All tiles, no reference run; it needs a model that segments (``not_judged`` otherwise).
    ``report_of`` must keep the predictions (``keep_predictions=True``)."""
    try:
        report = report_of(folder)
    except DataError as exc:
        return unreadable(cid, description, exc, units="tiles misplaced", threshold="0", basis=basis)
    misplaced = report.misplaced or ()
    message = placement_message(misplaced)
    c = judged(cid, description, not misplaced, measured=len(misplaced), units="tiles misplaced", threshold="0",
               basis=basis, reason=message.splitlines()[0], message=message, misplaced=[m.line() for m in misplaced])
    if not_judged:
        return c.not_judged(f"{not_judged} (measured {len(misplaced)} misplaced)")
    return c
