"""The report's PNGs from hand-made data; a missing family gives a reason, never a drawing of nothing."""

from __future__ import annotations

import os
import re

import pytest

from vnet_accept.report.figures import FIGURES, primary_accuracy, render_figures

PNG = b"\x89PNG\r\n\x1a\n"
# Two LUNA16 scans whose UIDs end in the same 6 digits.
TWINS = ("1.3.6.1.4.1.14519.5.2.1.6279.6001.197063290812663596858124411210",
         "1.3.6.1.4.1.14519.5.2.1.6279.6001.837810280808122125183730411210")


@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures the renderers draw, in order (to inspect their artists)."""
    from vnet_accept.report import figures

    figs: list = []
    original = figures._figure

    def spy(width, height):
        figs.append(original(width, height))
        return figs[-1]

    monkeypatch.setattr(figures, "_figure", spy)
    return figs


def texts(fig) -> list[str]:
    """Every text the figure shows: titles, axis and tick labels, legends, annotations."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def small_npz(path):
    import numpy as np

    mask = np.zeros((16, 20, 20), np.uint8)
    mask[4:12, 5:15, 3:9] = 1
    np.savez_compressed(path, ct=np.full(mask.shape, -1000, np.int16), mask=mask, prediction=mask)
    return str(path)


def test_every_figure_from_a_full_report(full_report, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    figures = render_figures(full_report, out)
    assert set(figures) == set(FIGURES)
    for name, result in figures.items():
        assert result == {"file": f"{name}.png"}, (name, result)
        data = (out / result["file"]).read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000


def test_reasons_when_there_is_nothing_to_draw(build, full_report, tmp_path):
    figures = render_figures(build.report_of([]), tmp_path)
    assert all("reason" in f and "file" not in f for f in figures.values())
    assert not list(tmp_path.glob("*.png"))
    # The worst volume's arrays are gone (a cleaned cache) and were not copied into the report folder.
    os.remove(full_report["criteria"][0]["details"]["worst_volume"]["npz"])
    only_accuracy = build.report_of(full_report["criteria"][:1])
    assert "is gone" in render_figures(only_accuracy, tmp_path)["worst_volume"]["reason"]


def test_the_per_volume_figure_shows_the_port_not_the_selftest_model(build):
    port = build.accuracy("torch-cpu", "skip", 92.0)
    own = build.accuracy("selftest_model", "pass", 0.42)
    own["details"]["subject"] = "selftest"
    for criteria in ([port, own], [own, port]):
        assert primary_accuracy(criteria, "per_volume")["id"] == "accuracy.error_rate.torch-cpu"
    assert primary_accuracy([own], "per_volume") is None
    om16, om1 = build.accuracy("om_bs16", "pass", 0.56), build.accuracy("om_bs1", "pass", 0.56)
    assert primary_accuracy([port, om16, om1], "per_volume")["id"] == "accuracy.error_rate.om_bs1"


def test_the_worst_volume_marks_tiles_not_evaluated_and_a_criterion_not_judged(build, tmp_path, drawn):
    """Tiles skipped for an empty mask hold no prediction: the figure greys and hatches them (with a legend entry
    saying why) instead of showing them as agreement; a skipped criterion's figure says NOT JUDGED."""
    import numpy as np

    from vnet_accept.data.tiles import VOLUME_SHAPE
    from vnet_accept.report import figures

    rng = np.random.default_rng(0)
    mask = np.zeros(VOLUME_SHAPE, dtype=np.uint8)
    mask[10:60, 40:120, 40:120] = 1  # lung in the top half only: tiles 4..7 (bottom) are not evaluated
    npz = tmp_path / "worst.npz"
    np.savez_compressed(npz, ct=rng.integers(-1000, 400, VOLUME_SHAPE).astype(np.int16), mask=mask,
                        prediction=mask, tiles=np.arange(4, dtype=np.int8), uid=np.asarray("1.2.3"))
    for verdict, reason in (("pass", ""), ("skip", "seeded stand-in weights: error rate not meaningful")):
        c = build.accuracy("torch-cpu", verdict, 0.5, npz=str(npz), reason=reason)
        assert figures.worst_volume(build.report_of([c]), tmp_path / f"{verdict}.png") is None
        fig = drawn[-1]
        labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert "not evaluated: tiles with an empty mask are skipped, not scored" in labels
        title = fig._suptitle.get_text()
        assert ("NOT JUDGED — seeded stand-in weights" in title) == (verdict == "skip"), title
    np.savez_compressed(npz, ct=np.zeros(VOLUME_SHAPE, np.int16), mask=mask, prediction=mask,
                        tiles=np.arange(8, dtype=np.int8))
    figures.worst_volume(build.report_of([build.accuracy("torch-cpu", "pass", 0.5, npz=str(npz))]),
                         tmp_path / "all.png")
    labels = [t.get_text() for legend in drawn[-1].legends for t in legend.get_texts()]
    assert not any(label.startswith("not evaluated") for label in labels)  # every tile evaluated: nothing to mark


def test_one_short_uid_form_in_every_figure(build, tmp_path, drawn):
    """A scan is named the same way on the per-volume ticks, its axis label and the worst volume's title, and that
    form tells apart scans whose UIDs share their last 6 digits."""
    from vnet_accept.data.uids import short_uid
    from vnet_accept.report import figures

    c = build.accuracy("torch-cpu", "pass", 0.5, volumes=2, npz=small_npz(tmp_path / "w.npz"))
    for volume, uid in zip(c["details"]["per_volume"], TWINS):
        volume["uid"] = uid
    c["details"]["worst_volume"]["uid"] = TWINS[1]  # the worst of the two (per_volume is in increasing error)
    report = build.report_of([c])
    assert figures.per_volume_error(report, tmp_path / "p.png") is None
    assert figures.worst_volume(report, tmp_path / "w.png") is None
    shown = [re.findall(r"…[0-9.]+", " ".join(texts(fig))) for fig in drawn]
    assert short_uid(TWINS[0]) != short_uid(TWINS[1])
    assert sorted(shown[0]) == sorted([short_uid(TWINS[0]), *[short_uid(TWINS[1])] * 2])  # 2 ticks + "worst …"
    assert shown[1] == [short_uid(TWINS[1])]


@pytest.mark.parametrize("error", [91.0, 5.0, 0.4, 0.05])
def test_the_published_reference_is_in_view_and_labelled_whatever_the_error_rates(build, tmp_path, drawn, error):
    """The dashed "published 0.355 %" line stands clear of the x-axis and the top (a log axis when the volumes'
    rates dwarf it), carries its own label, is drawn over the NOT JUDGED note, and the legend stays off the axes."""
    from vnet_accept.report import figures

    judged = error < 50
    c = build.accuracy("torch-cpu", "pass" if judged else "skip", error,
                       reason="" if judged else "seeded stand-in weights: error rate not meaningful; pass …")
    c["details"]["per_volume"][0]["error_rate_pct"] = 0.0  # a perfect volume: still shown on a log axis
    assert figures.per_volume_error(build.report_of([c]), tmp_path / "p.png") is None
    fig = drawn[-1]
    ax = fig.axes[0]
    fig.canvas.draw()
    (line,) = [ln for ln in ax.get_lines() if list(ln.get_ydata()) == [0.355, 0.355]]
    height = ax.transAxes.inverted().transform(ax.transData.transform((0, 0.355)))[1]
    assert 0.05 < height < 0.95, (ax.get_yscale(), ax.get_ylim())
    (label,) = [t for t in ax.texts if t.get_text() == "published 0.355 %"]
    others = [t.get_zorder() for t in ax.texts if t is not label]  # the NOT JUDGED note, a "0"
    assert label.get_zorder() >= line.get_zorder() > max(others, default=0)
    assert ("NOT JUDGED" in " ".join(t.get_text() for t in ax.texts)) == (not judged)
    renderer = fig.canvas.get_renderer()
    assert not fig.legends[0].get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    if ax.get_yscale() == "log":
        assert ax.get_ylabel() == "error rate (%, log scale)"
        assert "0" in [t.get_text() for t in ax.texts]  # the 0 % bar, which a log axis cannot draw


def test_parity_margins_rows_name_report_ids_and_the_figure_counts_what_was_not_judged(build, tmp_path, drawn):
    """Each row's label is a criterion id, or the id pattern of the batch sizes it folds (bs{4,8}); criteria not
    judged are counted in the figure with the first clause of their reason, never silently left out."""
    from vnet_accept.report import figures

    cuda = ("CUDA not available: torch.cuda.is_available() is False; run on a host with an NVIDIA GPU and a CUDA "
            "build of torch")
    folded = [build.criterion(f"batch_invariance.torch.instance.bs{bs}", "pass", 9e-7,
                              details=build.comparison(9e-7, 1e-5)) for bs in (8, 16)]
    skipped = [build.criterion(cid, "skip", reason=cuda) for cid in (
        "parity.onnxrt_vs_torch_cuda.eager.running.bs1_64x80x80", "batch_invariance.torch-cuda-fp16.running.bs16")]
    failed_to_run = build.criterion("parity.onnxrt_vs_torch.batch.bs1_64x80x80", "error", reason="onnxrt crashed")
    criteria = [*build.functional(), *folded, *skipped, failed_to_run]
    assert figures.parity_margins(build.report_of(criteria), tmp_path / "m.png") is None
    fig = drawn[-1]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]

    def pattern(label: str) -> re.Pattern:  # "a.bs{4,8} (max)" matches a.bs4 and a.bs8
        return re.compile(re.sub(r"\\\{([\d,]+)\\\}", lambda m: f"({m.group(1).replace(',', '|')})",
                                 re.escape(label.split(" (")[0])))

    shown = [c["id"] for c in criteria if figures._segments(c["id"])[0] in ("parity", "batch_invariance",
             "batch_dependence_detected") and c.get("measured") is not None]
    for cid in shown:
        assert sum(bool(pattern(label).fullmatch(cid)) for label in labels) == 1, (cid, labels)
    assert all(any(pattern(label).fullmatch(cid) for cid in shown) for label in labels), labels
    assert "batch_invariance.torch.instance.bs{4,8,16} (max)" in labels
    assert ("not drawn: 2 criteria not judged (CUDA not available), 1 with no measured difference and threshold"
            in texts(fig))
    # Nothing judged at all: the reason for having no figure says the same.
    reason = figures.parity_margins(build.report_of(skipped), tmp_path / "none.png")
    assert reason.endswith("not drawn: 2 criteria not judged (CUDA not available)"), reason


def test_a_parity_row_failing_on_label_flips_alone_says_so(build, tmp_path, drawn):
    """The figure draws max|Δ|: a criterion within its max|Δ| limit that fails on label flips is a red dot on the
    passing side of its threshold, so the row says what failed."""
    from vnet_accept.report import figures

    flipped = build.criterion("parity.onnxrt_vs_torch.running.bs1_64x80x80", "fail", 2e-5,
                              details=build.comparison(2e-5, 1e-4, flips=37))
    clean = build.criterion("parity.onnxrt_vs_torch.instance.bs1_64x80x80", "pass", 3e-6,
                            details=build.comparison(3e-6, 1e-4))
    assert figures.parity_margins(build.report_of([flipped, clean]), tmp_path / "m.png") is None
    shown = texts(drawn[-1])
    assert "fails on 37 label flips" in shown
    assert sum("fails on" in t for t in shown) == 1  # the passing row has no note


def test_the_worst_volume_legend_shows_each_shade_the_overlay_takes(build, tmp_path, drawn):
    """The overlay is translucent, so false lung is dark red over air and light red over tissue: the legend shows
    both shades as drawn and says which is which."""
    import numpy as np
    from matplotlib.patches import Rectangle

    from vnet_accept.report import figures

    ct = np.full((16, 20, 20), -1000, np.int16)
    ct[:, :, 10:] = 40  # air on the left of every axial slice, soft tissue on the right
    npz = tmp_path / "w.npz"
    np.savez_compressed(npz, ct=ct, mask=np.zeros(ct.shape, np.uint8), prediction=np.ones(ct.shape, np.uint8))
    c = build.accuracy("torch-cpu", "pass", 0.5, npz=str(npz))
    assert figures.worst_volume(build.report_of([c]), tmp_path / "w.png") is None
    fig = drawn[-1]
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255
    axial = fig.axes[0]

    def drawn_at(col: int) -> np.ndarray:  # the colour on the canvas at voxel (row 8, col) of the axial slice
        x, y = axial.transData.transform((col, 8))
        return pixels[pixels.shape[0] - 1 - int(round(y)), int(round(x))]

    (legend,) = fig.legends
    swatches = [p.get_facecolor()[:3] for p in legend.findobj(Rectangle) if p.get_visible() and p.get_alpha() != 0]
    for col in (2, 17):  # over air, over tissue
        assert min(np.abs(drawn_at(col) - np.asarray(s)).max() for s in swatches) < 4 / 255, (col, drawn_at(col))
    labels = [t.get_text() for t in legend.get_texts()]
    assert "prediction only (false lung): dark over air, light over tissue" in labels, labels
    assert "mask only (missed lung): dark over air, light over tissue" in labels, labels
