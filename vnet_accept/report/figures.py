"""The report's pictures (PNG, matplotlib's Agg canvas, no pyplot state): where a person would rather look.

* ``per_volume_error.png`` - per-volume error rates of the primary accuracy source (an OM one when there is one),
  sorted, with the pooled rate and the published reference for scale (a log axis when the rates dwarf it);
* ``worst_volume.png`` - the worst volume's central axial, coronal and sagittal CT slices with the
  prediction/mask disagreement overlaid (missed lung in blue, false lung in red), the mask's outline on top, the
  tiles not evaluated (empty mask: skipped by the tiling) greyed and hatched, and NOT JUDGED in the title when the
  criterion was not judged;
* ``fps_per_batch.png`` - card fps per batch size against the T4 thresholds (and the 1.2× Benchmark bound);
* ``parity_margins.png`` - each parity / batch-invariance difference against its threshold (log scale), rows
  labelled with criterion ids (a row failing on label flips alone says so), and how many criteria were not drawn
  and why.

:func:`render_figures` returns, per figure, ``{"file": name}`` or ``{"reason": why there is none}``; it never
draws a number that is not in the report.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.data.uids import short_uid
from vnet_accept.io_utils import atomic_write_bytes
from vnet_accept.report.notjudged import short_reason
from vnet_accept.report.record import accuracy_subject

FIGURES = ("per_volume_error", "worst_volume", "fps_per_batch", "parity_margins")
COLORS = {"pass": "#2e7d32", "fail": "#c62828", "error": "#6a1b9a", "skip": "#9e9e9e"}
_LIMIT = re.compile(r"(<=|>=|<|>)\s*([0-9.eE+-]+)")
DPI = 110
#: The worst volume's slices: CT window (HU, black to white) and the translucent disagreement overlay on it (RGB).
CT_WINDOW = (-1000, 400)
MISSED, FALSE = (0.1, 0.4, 1.0), (1.0, 0.15, 0.1)
OVERLAY_ALPHA = 0.55


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())


def _segments(cid: str) -> list[str]:
    return cid.split("[", 1)[0].split(".")


def _om_batch(source: str) -> int | None:
    m = re.fullmatch(r"om_bs(\d+)", source)
    return int(m.group(1)) if m else None


def primary_accuracy(criteria: Sequence[Mapping[str, Any]], need: str) -> Mapping[str, Any] | None:
    """The accuracy criterion a picture shows, chosen by meaning: the port under test only (never the self-test's
    own model, ``details.subject``), its OM results when there are any (smallest batch size first), else the
    accuracy chain of this run; among those, only criteria that recorded ``details[need]``."""
    candidates = [c for c in criteria if _segments(c["id"])[:2] == ["accuracy", "error_rate"]
                  and accuracy_subject(c) == "port" and (c.get("details") or {}).get(need)]

    def rank(c: Mapping[str, Any]) -> tuple[int, int, str]:
        source = ".".join(_segments(c["id"])[2:])
        bs = _om_batch(source)
        return (0, bs, source) if bs is not None else (1, 0, source)

    return min(candidates, key=rank, default=None)


def per_volume_error(report: Mapping[str, Any], path: Path) -> str | None:
    c = primary_accuracy(report.get("criteria", []), "per_volume")
    if c is None:
        return "no accuracy criterion of the port with per-volume results in this run"
    volumes = [v for v in c["details"]["per_volume"] if isinstance(v.get("error_rate_pct"), (int, float))]
    if not volumes:
        return f"{c['id']} lists no per-volume error rates"
    volumes.sort(key=lambda v: v["error_rate_pct"], reverse=True)
    rates = [v["error_rate_pct"] for v in volumes]
    settings = report.get("settings") or {}
    judged = c.get("verdict") in ("pass", "fail")
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot()
    # Neutral bars (the rule is on the pooled rate); hatched and grey when the rate was not judged.
    ax.bar(range(len(rates)), rates, width=0.85, linewidth=0, color="#5c6bc0" if judged else "#bdbdbd",
           hatch=None if judged else "//", edgecolor="white")
    pooled = float(c["measured"]) if isinstance(c.get("measured"), (int, float)) else None
    ref = float(settings["reference_error"]) if settings.get("reference_error") is not None else None
    if pooled is not None:
        ax.axhline(pooled, color="black", lw=1, label=f"pooled {pooled:.4f} %")
    top = max(v for v in (*rates, pooled, ref) if v is not None) * 1.12
    # On an axis from 0, a reference under a tenth of the top sits on the x-axis (0.355 % under bars of ~90 %): a
    # log axis then shows the reference, the pooled rate and every bar, whatever their spread.
    log = ref is not None and 0 < ref < 0.1 * top
    if log:
        floor = min(v for v in (*rates, pooled, ref) if v is not None and v > 0) / 2
        from matplotlib.ticker import FuncFormatter, NullLocator

        ax.set_yscale("log")
        ax.set_ylim(floor, top * 2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.1, 1, 10, 100: percent as written
        ax.yaxis.set_minor_locator(NullLocator())
        for i in np.flatnonzero(np.asarray(rates) <= 0):  # a bar of 0 has no height on a log axis
            ax.annotate("0", (i, floor), textcoords="offset points", xytext=(0, 2), ha="center", fontsize=7)
    else:
        ax.set_ylim(0, top)
    if ref is not None:  # drawn and labelled over everything else on the axes, the NOT JUDGED note included
        ax.axhline(ref, color="#1565c0", lw=1.5, ls="--", label=f"published {ref:g} %", zorder=4)
        ax.annotate(f"published {ref:g} %", (1, ref), xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(-3, 2), ha="right", va="bottom", fontsize=7, color="#1565c0", zorder=4,
                    bbox={"facecolor": "white", "alpha": 0.85, "lw": 0, "pad": 1})
    source = ".".join(_segments(c["id"])[2:])
    ax.set_title(f"{source}: error rate per volume ({len(rates)} volumes, sorted)", fontsize=10)
    if not judged:
        why = (c.get("reason") or "not judged").split(";")[0].split(" (measured")[0]
        ax.text(0.5, 0.5, "NOT JUDGED\n" + "\n".join(_wrap(why, 60)), transform=ax.transAxes, ha="center",
                va="center", fontsize=8, color="#424242", bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})
    ax.set_ylabel("error rate (%, log scale)" if log else "error rate (%)")
    ax.set_xlabel("volume (worst first)" + (f"; worst {short_uid(volumes[0]['uid'])}" if volumes[0].get("uid")
                                            else ""))
    ax.set_xlim(-0.6, len(rates) - 0.4)
    if len(rates) <= 12:
        ax.set_xticks(range(len(rates)), [short_uid(v.get("uid", "?")) for v in volumes], fontsize=7, rotation=30)
    else:
        ax.set_xticks([])
    fig.legend(fontsize=8, frameon=False, loc="outside lower center", ncol=2)  # outside: never over a line
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return None


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)[:3]


def _resolve(npz: str, report_dir: Path, cid: str) -> Path | None:
    """The file in the report folder (named relative to it, or copied there as ``<id>.worst_volume.npz`` by
    :func:`vnet_accept.gate.finalise.copy_evidence`), else the original."""
    for candidate in (report_dir / npz, report_dir / f"{cid.split('[', 1)[0]}.worst_volume.npz", Path(npz)):
        if candidate.is_file():
            return candidate
    return None


def worst_volume(report: Mapping[str, Any], path: Path) -> str | None:
    c = primary_accuracy(report.get("criteria", []), "worst_volume")
    if c is None:
        return "no accuracy criterion recorded a worst volume in this run"
    worst = c["details"]["worst_volume"]
    if not worst.get("npz"):
        return f"{c['id']}: the worst volume's arrays were not saved (details.worst_volume.npz)"
    npz = _resolve(str(worst["npz"]), path.parent, c["id"])
    if npz is None:
        return f"{worst['npz']} is gone (the worst volume's arrays; re-run the gate to regenerate them)"
    with np.load(npz) as data:
        missing = [k for k in ("ct", "mask", "prediction") if k not in data]
        if missing:
            return f"{npz} lacks {', '.join(missing)}"
        ct, mask, pred = data["ct"], data["mask"].astype(bool), data["prediction"].astype(bool)
        tiles = [int(t) for t in data["tiles"]] if "tiles" in data else None
    if not (ct.ndim == 3 and ct.shape == mask.shape == pred.shape):
        return f"{npz}: ct/mask/prediction shapes differ or are not 3-D ({ct.shape}, {mask.shape}, {pred.shape})"
    evaluated = _evaluated(tiles, ct.shape)
    z, y, x = (s // 2 for s in ct.shape)
    views = ((f"axial (z={z})", np.s_[z, :, :]), (f"coronal (y={y})", np.s_[::-1, y, :]),
             (f"sagittal (x={x})", np.s_[::-1, :, x]))
    fig = _figure(8.4, 3.6)
    axes = fig.subplots(1, 3)
    shaded = False
    for ax, (title, index) in zip(axes, views):
        ax.imshow(np.clip(ct[index], *CT_WINDOW), cmap="gray", vmin=CT_WINDOW[0], vmax=CT_WINDOW[1],
                  interpolation="nearest")
        if evaluated is not None and not evaluated[index].all():
            # Tiles not evaluated (their mask is empty, so the tiling skips them) hold no prediction: greyed and
            # hatched, so their lack of overlay is not read as agreement.
            outside = (~evaluated[index]).astype(float)
            ax.imshow(np.where(outside > 0, 0.55, np.nan), cmap="Greys", vmin=0, vmax=1, alpha=0.6,
                      interpolation="nearest")
            ax.contourf(outside, levels=[0.5, 1.5], colors="none", hatches=["////"])
            shaded = True
        overlay = np.zeros((*ct[index].shape, 4))
        overlay[mask[index] & ~pred[index]] = (*MISSED, OVERLAY_ALPHA)
        overlay[pred[index] & ~mask[index]] = (*FALSE, OVERLAY_ALPHA)
        ax.imshow(overlay, interpolation="nearest")
        if mask[index].any():  # the reference outline on top of everything
            ax.contour(mask[index].astype(float), levels=[0.5], colors=["#fdd835"], linewidths=0.6)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.patches import Patch

    # The overlay lets the CT show through, so each colour has a dark shade (over air) and a light one (over
    # tissue); the legend shows both, as drawn.
    handles = [(Patch(color=_over(rgb, -1000)), Patch(color=_over(rgb, 40))) for rgb in (MISSED, FALSE)]
    labels = ["mask only (missed lung): dark over air, light over tissue",
              "prediction only (false lung): dark over air, light over tissue"]
    handles.append(Patch(edgecolor="#fdd835", facecolor="none"))
    labels.append("mask outline")
    if shaded:
        handles.append(Patch(facecolor="#9e9e9e", edgecolor="#424242", hatch="////"))
        labels.append("not evaluated: tiles with an empty mask are skipped, not scored")
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8, frameon=False,
               handler_map={tuple: HandlerTuple(ndivide=None, pad=0)})
    rate = worst.get("error_rate_pct")
    title = (f"worst volume {short_uid(str(worst.get('uid', '?')))} "
             + (f"({rate:.3f} % error over its evaluated tiles, " if isinstance(rate, (int, float)) else "(")
             + f"{'.'.join(_segments(c['id'])[2:])})")
    if c.get("verdict") not in ("pass", "fail"):
        why = (c.get("reason") or "not judged").split(";")[0].split(" (measured")[0]
        title += f"\nNOT JUDGED — {why}"
    fig.suptitle(title, fontsize=9 if "\n" in title else 10)
    _save(fig, path)
    return None


def _over(rgb: tuple[float, float, float], hu: float) -> tuple[float, ...]:
    """The colour the overlay ``rgb`` takes over CT value ``hu`` (its blend with the grey beneath)."""
    grey = (np.clip(hu, *CT_WINDOW) - CT_WINDOW[0]) / (CT_WINDOW[1] - CT_WINDOW[0])
    return tuple(OVERLAY_ALPHA * c + (1 - OVERLAY_ALPHA) * grey for c in rgb)


def _evaluated(tiles: Sequence[int] | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Where the evaluated tiles lie (bool, the volume's shape), or None when unknown (arrays written before
    ``tiles`` was saved, or a volume of another shape)."""
    if tiles is None:
        return None
    from vnet_accept.data.tiles import VOLUME_SHAPE, coverage

    if tuple(shape) != tuple(VOLUME_SHAPE):
        return None
    return coverage(tiles) > 0


def fps_per_batch(report: Mapping[str, Any], path: Path) -> str | None:
    rows = []
    for c in report.get("criteria", []):
        if _segments(c["id"])[:2] != ["perf", "throughput"]:
            continue
        d = c.get("details") or {}
        card, t4 = d.get("card_fps", c.get("measured")), d.get("t4_fps")
        bs = d.get("batch_size") or (int(m.group(1)) if (m := re.search(r"bs(\d+)", c["id"])) else None)
        if isinstance(card, (int, float)) and isinstance(t4, (int, float)) and bs:
            rows.append((bs, card, t4, d.get("t4_basis", ""), c.get("verdict")))
    if not rows:
        return "no throughput figure (perf.throughput.bs<N> with card and T4 fps) in this run"
    rows.sort()
    fig = _figure(6.0, 3.3)
    ax = fig.add_subplot()
    xs = range(len(rows))
    ax.bar(xs, [r[1] for r in rows], width=0.6, color=[COLORS.get(r[4], "#1565c0") for r in rows],
           label="card fps (per chip × chips)")
    for i, (_bs, card, t4, _basis, _v) in enumerate(rows):
        ax.hlines(t4, i - 0.38, i + 0.38, color="black", lw=2, label="T4 threshold" if i == 0 else None)
        ax.hlines(1.2 * t4, i - 0.38, i + 0.38, color="black", lw=1, ls=":",
                  label="1.2 × T4 (Benchmark)" if i == 0 else None)
        ax.annotate(f"{card / t4:.2f}×", (i, max(card, 1.2 * t4)), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=8)
    ax.set_xticks(list(xs), [f"bs{r[0]}\nT4 {r[3]}" if r[3] else f"bs{r[0]}" for r in rows], fontsize=8)
    ax.set_ylabel("frames per second")
    ax.set_title("Ascend card fps against the T4 (labels: card / T4)", fontsize=10)
    ax.set_ylim(0, max(max(r[1] for r in rows), 1.2 * max(r[2] for r in rows)) * 1.18)
    fig.legend(fontsize=7, frameon=False, loc="outside lower center", ncol=3)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return None


def limit_of(c: Mapping[str, Any]) -> tuple[str, float] | None:
    """The max-|Δ| limit of a parity/invariance criterion: from its comparison's tolerance, else its text."""
    tol = ((c.get("details") or {}).get("comparison") or {}).get("tolerance") or {}
    if isinstance(tol, Mapping) and isinstance(tol.get("max_abs"), (int, float)):
        op = ">" if _segments(c["id"])[0] == "batch_dependence_detected" else "<="
        return op, float(tol["max_abs"])
    m = _LIMIT.search(c.get("threshold") or "")
    if m:
        try:
            return m.group(1), float(m.group(2))
        except ValueError:
            return None
    return None


#: The criteria ``parity_margins.png`` draws (by an id's first segment), in the order of its rows.
MARGIN_FAMILIES = ("parity", "batch_invariance", "batch_dependence_detected")


def _margin_rows(criteria: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, tuple[str, float], str, int]]:
    """One row per criterion, batch sizes folded: ``batch_invariance.onnxrt.running.bs4`` … ``bs32`` become one row
    labelled ``batch_invariance.onnxrt.running.bs{4,8,16,32} (max)`` with the largest difference (the smallest for
    ``batch_dependence_detected``, which must exceed its limit); a row of one criterion is labelled with its id.
    The last field is the row's label flips (the figure draws max|Δ| only; a row can fail on flips alone)."""
    groups: dict[tuple[str, str, float], list[tuple[int | None, float, str, int]]] = {}
    for c in criteria:
        limit = _margin_limit(c)
        if limit is None:
            continue
        segments = _segments(c["id"])
        bs = next((int(s[2:]) for s in segments if re.fullmatch(r"bs\d+", s)), None)
        key = ".".join("bs*" if re.fullmatch(r"bs\d+", s) else s for s in segments) if bs is not None else c["id"]
        flips = ((c.get("details") or {}).get("comparison") or {}).get("flips") or 0
        groups.setdefault((key, *limit), []).append((bs, float(c["measured"]), c.get("verdict", "error"),
                                                     int(flips)))
    order = {"fail": 0, "error": 1, "pass": 2, "skip": 3}
    rows = []
    for (key, op, limit), members in groups.items():
        pick = min if op.startswith(">") else max
        value = pick(m[1] for m in members)
        verdict = min((m[2] for m in members), key=lambda v: order.get(v, 9))
        sizes = sorted(m[0] for m in members if m[0] is not None)
        if sizes:  # the batch sizes "bs*" stands for
            key = key.replace("bs*", f"bs{{{','.join(map(str, sizes))}}}" if len(sizes) > 1 else f"bs{sizes[0]}")
        rows.append((key + (f" ({pick.__name__})" if len(members) > 1 else ""), value, (op, limit), verdict,
                     sum(m[3] for m in members)))
    rows.sort(key=lambda r: (MARGIN_FAMILIES.index(_segments(r[0])[0]), r[0]))
    return rows


def _margin_limit(c: Mapping[str, Any]) -> tuple[str, float] | None:
    """The limit a criterion is drawn against, or None when ``parity_margins.png`` does not draw it (another
    family, or no measured difference)."""
    if _segments(c["id"])[0] not in MARGIN_FAMILIES or not isinstance(c.get("measured"), (int, float)):
        return None
    return limit_of(c)


def _not_drawn(criteria: Sequence[Mapping[str, Any]]) -> str | None:
    """``"not drawn: 17 criteria not judged (CUDA not available)"``: what the margins leave out and why (the first
    clause of each skip reason), so that a missing row is never read as a pass."""
    skipped: dict[str, int] = {}
    other = 0
    for c in criteria:
        if _segments(c["id"])[0] not in MARGIN_FAMILIES or _margin_limit(c) is not None:
            continue
        if c.get("verdict") == "skip":
            why = short_reason(c.get("reason") or "no reason given")
            skipped[why] = skipped.get(why, 0) + 1
        else:
            other += 1
    parts = []
    if skipped:
        n = sum(skipped.values())
        whys = "; ".join(why if len(skipped) == 1 else f"{why}: {k}" for why, k in skipped.items())
        parts.append(f"{n} criteri{'a' if n != 1 else 'on'} not judged ({whys})")
    if other:
        parts.append(f"{other} with no measured difference and threshold")
    return "not drawn: " + ", ".join(parts) if parts else None


def parity_margins(report: Mapping[str, Any], path: Path) -> str | None:
    criteria = report.get("criteria", [])
    rows = _margin_rows(criteria)
    not_drawn = _not_drawn(criteria)
    if not rows:
        return ("no parity or batch-invariance criterion with a measured value and a threshold in this run"
                + (f"; {not_drawn}" if not_drawn else ""))
    positive = [v for r in rows for v in (r[1], r[2][1]) if v > 0]
    floor = 10 ** (np.floor(np.log10(min(positive))) - 2) if positive else 1e-9  # where an exact 0 is drawn
    fig = _figure(7.2, 1.5 + 0.24 * len(rows))
    ax = fig.add_subplot()
    for i, (_label, value, (op, limit), verdict, flips) in enumerate(rows):
        ax.scatter([value if value > 0 else floor], [i], color=COLORS.get(verdict, "black"), s=22, zorder=3,
                   marker="o" if value > 0 else "<")
        within = value > limit if op.startswith(">") else value <= limit
        if verdict in ("fail", "error") and within:  # a red dot on the passing side: say what failed
            why = f"fails on {flips} label flip{'s' if flips != 1 else ''}" if flips and not op.startswith(">") \
                else "fails on another limit (see the report)"
            ax.annotate(why, (value if value > 0 else floor, i), textcoords="offset points", xytext=(-6, -2),
                        ha="right", fontsize=6, color=COLORS["fail"])  # left of the dot: clear of the threshold
        ax.scatter([limit if limit > 0 else floor], [i], marker="|", color="black", s=120, zorder=2)
        note = "must exceed" if op.startswith(">") else "threshold 0" if limit <= 0 else ""
        if note:
            ax.annotate(note, (limit if limit > 0 else floor, i), textcoords="offset points", xytext=(4, -3),
                        fontsize=6)
    ax.set_xscale("log")
    ax.set_xlim(floor / 3, max(max(r[1], r[2][1]) for r in rows) * 5)
    from matplotlib.ticker import LogLocator, NullLocator

    ax.xaxis.set_major_locator(LogLocator(numticks=8))
    ax.xaxis.set_minor_locator(NullLocator())  # minor ticks on a log axis cost most of the drawing time
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("max |Δ log-probability| (log scale)", fontsize=8)
    fig.suptitle("Parity and batch invariance: measured vs threshold", fontsize=10)
    if not_drawn:
        ax.set_title("\n".join(_wrap(not_drawn, 110)), fontsize=8, color="#424242")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=COLORS["pass"], label="measured (pass)"),
               Line2D([], [], ls="", marker="o", color=COLORS["fail"], label="measured (fail)"),
               Line2D([], [], ls="", marker="<", color="gray", label="exactly 0"),
               Line2D([], [], ls="", marker="|", color="black", markersize=10, label="threshold")]
    fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncol=4, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="x", labelsize=8)
    _save(fig, path)
    return None


RENDERERS: dict[str, Callable[[Mapping[str, Any], Path], str | None]] = {
    "per_volume_error": per_volume_error,
    "worst_volume": worst_volume,
    "fps_per_batch": fps_per_batch,
    "parity_margins": parity_margins,
}


def render_figures(report: Mapping[str, Any], directory: Path) -> dict[str, dict[str, str]]:
    """Draw every figure the report's data allows into ``directory``; name -> ``{"file"}`` or ``{"reason"}``.

    A figure that cannot be drawn (a bug, odd data) costs only itself: its entry says why, with ``"error"`` set,
    and the other figures are still drawn - a picture never takes the verdicts down with it."""
    out: dict[str, dict[str, str]] = {}
    for name, draw in RENDERERS.items():
        file = Path(directory) / f"{name}.png"
        try:
            reason = draw(report, file)
        except Exception as exc:  # noqa: BLE001 - one figure's failure is reported, not raised
            file.unlink(missing_ok=True)
            error = f"{type(exc).__name__}: {exc}"
            out[name] = {"reason": f"drawing it failed ({error}); the verdicts are unaffected", "error": error}
            continue
        out[name] = {"reason": reason} if reason else {"file": file.name}
    return out
