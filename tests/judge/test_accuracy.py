"""``judge.accuracy``: what an error-rate criterion records, for the port and for the self-test's own model."""

from __future__ import annotations

from vnet_accept.judge.accuracy import error_rate, error_rate_at_most
from vnet_accept.metrics.accuracy import AccuracyResult, TileCounts, VolumeResult
from vnet_accept.reference import AccuracyReference


class _Report:  # the PostprocessReport fields the criteria read
    def __init__(self, incorrect_per_volume: list[int]):
        uids = [f"1.2.{i}" for i in range(len(incorrect_per_volume))]
        tiles = tuple(TileCounts(uid, 0, 1000, n, 0) for uid, n in zip(uids, incorrect_per_volume))
        vols = tuple(VolumeResult(uid, (0,), 1000, n, 0, 409_600) for uid, n in zip(uids, incorrect_per_volume))
        self.result = AccuracyResult(tiles, vols, None)
        self.uids_listed = self.uids_used = len(uids)
        self.source = "streamed"
        self.views = AccuracyReference().views(self.result.error_rate_pct)


def test_the_port_records_its_views_against_the_published_figure():
    report = _Report([1500, 2000])
    c = error_rate("accuracy.error_rate.onnxrt", "d", report, AccuracyReference(), basis="b")
    assert c.details["subject"] == "port"
    assert c.details["views"]["published_error_pct"] == 0.355
    assert c.details["views"]["abs_diff_pp"] == c.measured - 0.355


def test_the_selftest_model_is_held_to_its_own_ceiling_and_records_no_view_against_the_published_figure():
    """Its 0.38 % next to 'published 0.355 %' would read as the port's accuracy; it is held to ≤ 2 % only."""
    report = _Report([1500, 2000])
    c = error_rate_at_most("selftest.trained_model.error_rate", "d", report, 2.0, basis="b")
    assert (c.verdict, c.threshold, c.details["subject"]) == ("pass", "<= 2.0 %", "selftest")
    assert "views" not in c.details
    failing = error_rate_at_most("selftest.trained_model.error_rate", "d", _Report([9000, 9000]), 2.0, basis="b")
    assert failing.verdict == "fail" and failing.measured > 2.0
