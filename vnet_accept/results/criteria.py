"""Recording accuracy criteria (``accuracy.error_rate.<source>``) the same way for every source: the CPU chain
(``checks/test_accuracy.py``) and OM outputs (``checks/test_npu.py``). The details follow the contract in
:mod:`vnet_accept.report.record`."""

from __future__ import annotations


def threshold_text(reference) -> str:
    return f"|error − {reference.published_error_pct}| ≤ {reference.tolerance_pp} pp"


def not_judged_reason(uses_real_weights: bool, synthetic: bool) -> str | None:
    if not uses_real_weights:
        return ("seeded stand-in weights: error rate not meaningful; pass --vnet-weights "
                "vnet_model_best.pth.tar and --luna16-root/--test-uids to judge it")
    if synthetic:
        return ("synthetic dataset: error rate not meaningful; pass --luna16-root (and --test-uids) to judge the "
                "trained weights on LUNA16")
    return None


def error_rate_details(report, subject: str, worst_npz=None) -> dict:
    """The details every ``accuracy.error_rate.<source>`` criterion records (the contract in
    :mod:`vnet_accept.report.record`): one shape whoever measured it; ``subject`` says whose model it is
    (``"port"`` or ``"selftest"``)."""
    r = report.result
    worst = r.worst_volume()
    details = dict(subject=subject, incorrect=r.incorrect, total=r.total, tiles=r.tiles, volumes=r.volumes,
                   uids_listed=report.uids_listed, uids_used=report.uids_used, views=report.views,
                   ci95_pct=list(r.ci95_pct), per_volume=[v.to_dict() for v in r.per_volume],
                   dice=r.dice, iou=r.iou, mean_volume_dice=r.mean_volume_dice, results=report.source,
                   port_line=r.port_line())
    if worst_npz is not None:
        details["worst_volume"] = {"uid": worst.uid, "error_rate_pct": worst.error_rate_pct, "npz": str(worst_npz)}
    return details


def measure_error_rate(gate_record, cid, description, report, basis, reference, artifact_dir, luna16_root,
                       **extra):
    """Record ``accuracy.error_rate.<source>`` of the port under test with the details the report reads;
    returns the handle."""
    from vnet_accept.results.postprocess import save_volume_npz

    r = report.result
    npz = artifact_dir / f"{cid.replace('.', '_')}_worst_volume.npz"
    save_volume_npz(npz, report, r.worst_volume().uid, luna16_root)
    c = gate_record.criterion(cid, description, units="%", threshold=threshold_text(reference), basis=basis)
    c.artifact("worst_volume", npz)
    lo, hi = r.ci95_pct
    views = report.views
    reason = (f"{r.port_line()}; 95 % CI {lo:.4f}–{hi:.4f} %; relative change {views['relative_change_pct']:+.1f} %, "
              f"point accuracy {views['point_accuracy_pct']:.4f} %")
    c.measure(r.error_rate_pct, reference.passes(r.error_rate_pct), reason=reason,
              **error_rate_details(report, "port", npz), **extra)
    return c


def failure_line(cid, report, reference) -> str:
    r = report.result
    return (f"{cid}: error {r.error_rate_pct:.4f} % vs {reference.published_error_pct} %: "
            f"|Δ| {abs(report.views['abs_diff_pp']):.4f} pp > {reference.tolerance_pp} pp; {r.port_line()}")


def placement_message(misplaced) -> str:
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
