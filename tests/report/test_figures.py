"""The report's PNGs from hand-made data; a missing family gives a reason, never a drawing of nothing."""

from __future__ import annotations

import os

from vnet_accept.report.figures import FIGURES, primary_accuracy, render_figures

PNG = b"\x89PNG\r\n\x1a\n"


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
