"""Error counts, Dice/IoU, the port's line, the bootstrap interval and the streaming accumulator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnet_accept.data.tiles import TILE_SHAPE, TILE_VOXELS, VOLUME_SHAPE, Tile
from vnet_accept.metrics.accuracy import (
    MIN_CI_VOLUMES,
    AccuracyAccumulator,
    NonFiniteOutput,
    bootstrap_error_ci,
    dice,
    format_port_line,
    iou,
    parse_port_line,
)
from vnet_accept.results.synthetic import lung_masks, planted_output

UIDS = ("1.2.3.1", "1.2.3.2", "1.2.3.3")


@pytest.fixture(scope="module")
def masks():
    return lung_masks(UIDS, {UIDS[0]: range(8), UIDS[1]: (0, 3), UIDS[2]: (6,)}, seed=3)


def _score_one_tile(out: np.ndarray, mask: np.ndarray):
    """The accumulator's counts and prediction for one tile output against its (64, 80, 80) mask."""
    volume = np.zeros(VOLUME_SHAPE, dtype=bool)
    volume[Tile(0).slices] = mask
    acc = AccuracyAccumulator({"u": volume})
    return acc.add("u", 0, out), acc.tile_prediction("u", 0)


def test_prediction_is_argmax_with_ties_to_class_0():
    out = planted_output(np.zeros(TILE_SHAPE, dtype=bool), np.random.default_rng(0))
    # The 4th pair's difference overflows float32 to Inf: still finite outputs, still class 1.
    out.reshape(-1, 2)[:5] = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [-3e38, 3e38], [-2.0, -2.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an expected overflow is handled, not warned about
        _, prediction = _score_one_tile(out, np.zeros(TILE_SHAPE, dtype=bool))
    assert prediction.reshape(-1)[:5].tolist() == [True, False, False, True, False]
    assert (prediction == (np.argmax(out, axis=-1) == 1)).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.5), st.floats(0.0, 0.2))
def test_counts_equal_the_ports_argmax_comparison(seed, error_fraction, tie_fraction):
    rng = np.random.default_rng(seed)
    mask = rng.random(TILE_SHAPE) < 0.4
    prediction = mask ^ (rng.random(mask.shape) < error_fraction)
    ties = rng.random(mask.shape) < tie_fraction
    out = planted_output(prediction & ~ties, rng, ties)
    counts, _ = _score_one_tile(out, mask)
    port_incorrect = int((out.reshape(-1, 2).argmax(1) != mask.reshape(-1)).sum())
    assert counts.incorrect == port_incorrect and counts.voxels == mask.size
    assert counts.mask_voxels == mask.sum()


def test_dice_and_iou_with_the_empty_mask_rule():
    assert dice(0, 0, 0) == iou(0, 0, 0) == 1.0  # both empty: perfect agreement
    assert dice(0, 5, 0) == iou(0, 5, 0) == 0.0  # a prediction on an empty mask
    assert dice(8, 2, 2) == pytest.approx(16 / 20) and iou(8, 2, 2) == pytest.approx(8 / 12)


def test_port_line_formats_and_parses_back():
    line = format_port_line(2_479_051, 439_091_200)
    assert line == "Test set: Error: 2479051/439091200 (0.5646%)"
    parsed = parse_port_line(f"some log\n{line}\n\nmore")
    assert (parsed.incorrect, parsed.total, parsed.pct) == (2_479_051, 439_091_200, 0.5646)
    with pytest.raises(ValueError, match="no 'Test set: Error"):
        parse_port_line("Test set: Average loss: 0.1")


def test_bootstrap_interval_is_seeded_and_brackets_the_pooled_rate():
    rng = np.random.default_rng(0)
    total = np.full(40, 8 * TILE_VOXELS)
    incorrect = (rng.uniform(0.002, 0.01, 40) * total).astype(int)
    pooled = 100 * incorrect.sum() / total.sum()
    lo, hi = bootstrap_error_ci(incorrect, total, resamples=1000, seed=5)
    assert (lo, hi) == bootstrap_error_ci(incorrect, total, resamples=1000, seed=5)
    assert lo < pooled < hi and hi - lo < 0.2
    assert bootstrap_error_ci([3], [100]) == (3.0, 3.0)  # one volume: no spread to resample
    assert bootstrap_error_ci([5, 5, 5], [100, 100, 100]) == (5.0, 5.0)


def test_no_interval_below_the_minimum_number_of_volumes():
    """With 2 volumes the bootstrap's "interval" is just the two per-volume rates: none is given, and it says why."""
    volumes = {f"1.2.{i}": np.zeros(VOLUME_SHAPE, dtype=bool) for i in range(MIN_CI_VOLUMES)}
    acc = AccuracyAccumulator(volumes, keep_predictions=False)
    for i, uid in enumerate(volumes):
        wrong = np.zeros(TILE_SHAPE, dtype=bool)
        wrong.flat[:100 * (i + 1)] = True  # every volume its own error rate
        acc.add(uid, 0, _logprobs_of(wrong))
        if i == 1:
            two = acc.result(resamples=200)
            assert two.ci95_pct is None and two.to_dict()["ci95_pct"] is None
            assert two.ci_text() == "no 95 % CI — 2 volumes: too few for an interval, which needs 10"
    result = acc.result(resamples=200)
    low, high = result.ci95_pct
    assert low < result.error_rate_pct < high and result.ci_text().startswith("95 % CI ")


def test_accumulator_counts_planted_errors_exactly(masks):
    rng = np.random.default_rng(1)
    acc = AccuracyAccumulator(masks)
    expected = {}
    for uid, tiles in ((UIDS[0], range(8)), (UIDS[1], (0, 3)), (UIDS[2], (6,))):
        for k in tiles:
            mask = Tile(k).crop(masks[uid])
            wrong = rng.random(TILE_SHAPE) < 0.02
            counts = acc.add(uid, k, planted_output(mask ^ wrong, rng))
            expected[(uid, k)] = int(wrong.sum())
            assert counts.incorrect == expected[(uid, k)] and counts.mask_voxels == int(mask.sum())
    result = acc.result(resamples=200)
    assert result.counts_by_tile() == expected
    assert result.incorrect == sum(expected.values()) == sum(v.incorrect for v in result.per_volume)
    assert result.total == 11 * TILE_VOXELS and result.tiles == 11 and result.volumes == 3
    assert [v.uid for v in result.per_volume] == list(UIDS)
    assert result.port_line() == format_port_line(result.incorrect, result.total)
    assert result.ci95_pct is None  # 3 volumes: too few for an interval
    worst = result.worst_volume()
    assert worst.error_rate_pct == max(v.error_rate_pct for v in result.per_volume)
    # The reassembled prediction of a volume gives its counts voxel by voxel.
    for v in result.per_volume:
        prediction = acc.prediction_volume(v.uid).astype(bool)
        evaluated = np.zeros(VOLUME_SHAPE, dtype=bool)
        for k in v.tiles:
            evaluated[Tile(k).slices] = True
        assert np.count_nonzero((prediction != masks[v.uid]) & evaluated) == v.incorrect
        assert not prediction[~evaluated].any()


def test_accumulator_rejects_nan_duplicates_and_wrong_shapes(masks):
    acc = AccuracyAccumulator(masks, keep_predictions=False)
    out = planted_output(Tile(0).crop(masks[UIDS[0]]), np.random.default_rng(0))
    bad = out.copy()
    bad[1, 2, 3, 0] = np.nan
    bad[4, 5, 6, 1] = np.inf
    with pytest.raises(NonFiniteOutput, match=r"scan 1.2.3.1 tile 0: 2 of 819,200 output values are NaN or Inf"):
        acc.add(UIDS[0], 0, bad)
    assert len(acc) == 0  # a non-finite tile is not counted
    acc.add(UIDS[0], 0, out[None])  # a leading batch axis of 1 is accepted
    with pytest.raises(ValueError, match="already added"):
        acc.add(UIDS[0], 0, out)
    with pytest.raises(ValueError, match=r"output shape \(64, 80, 80\)"):
        acc.add(UIDS[0], 1, out[..., 0])
    with pytest.raises(ValueError, match="predictions were not kept"):
        acc.tile_prediction(UIDS[0], 0)
    acc.reset()
    assert len(acc) == 0 and acc.result().volumes == 0


def test_add_batch_pairs_keys_with_outputs_in_order(masks):
    rng = np.random.default_rng(2)
    keys = [(UIDS[1], 3), (UIDS[1], 0)]
    outputs = np.stack([planted_output(~Tile(k).crop(masks[u]), rng) for u, k in keys])  # everything wrong
    counts = AccuracyAccumulator(masks).add_batch(keys, outputs)
    assert [c.incorrect for c in counts] == [TILE_VOXELS, TILE_VOXELS]
    assert [(c.uid, c.tile) for c in counts] == keys
    with pytest.raises(ValueError, match="2 tile keys for 1 outputs"):
        AccuracyAccumulator(masks).add_batch(keys, outputs[:1])


def _logprobs_of(prediction: np.ndarray) -> np.ndarray:
    out = np.empty((*prediction.shape, 2), dtype=np.float32)
    out[..., 1] = np.where(prediction, 0.0, -5.0)
    out[..., 0] = np.where(prediction, -5.0, 0.0)
    return out


def test_misplaced_tiles_names_two_swapped_outputs_and_nothing_else():
    from vnet_accept.data.tiles import VOLUME_SHAPE
    from vnet_accept.metrics.accuracy import AccuracyAccumulator

    volume = np.zeros(VOLUME_SHAPE, dtype=bool)
    corners = [(5, 5, 5), (20, 40, 30), (10, 5, 40), (24, 35, 2), (0, 20, 20), (28, 0, 44), (14, 44, 10), (2, 30, 40)]
    for k, corner in enumerate(corners):  # a lung blob (11 % of the tile) in each of the 8 tiles, each elsewhere
        t = Tile(k)
        blob = tuple(slice(s.start + c, s.start + c + 36) for s, c in zip(t.slices, corner))
        volume[blob] = True
    masks = {"u": volume}
    good = {k: Tile(k).crop(volume) for k in range(8)}

    swapped = AccuracyAccumulator(masks)
    for k, source in enumerate([0, 2, 1, 3, 4, 5, 6, 7]):  # tiles 1 and 2 hold each other's outputs
        swapped.add("u", k, _logprobs_of(good[source]))
    found = {(m.key[1], m.holds[1]) for m in swapped.misplaced_tiles()}
    assert found == {(1, 2), (2, 1)}
    line = next(m for m in swapped.misplaced_tiles() if m.key[1] == 1).line()
    assert line.startswith("scan u, tile 1 (error") and "holds the output of tile 2" in line

    one_wrong = AccuracyAccumulator(masks)  # a tile that is wrong, but nobody else's: not a misplacement
    for k in range(8):
        one_wrong.add("u", k, _logprobs_of(~good[k] if k == 1 else good[k]))
    assert one_wrong.misplaced_tiles() == []

    noise = AccuracyAccumulator(masks)  # random weights: every tile as far from every mask
    rng = np.random.default_rng(0)
    for k in range(8):
        noise.add("u", k, _logprobs_of(rng.random(good[k].shape) < 0.5))
    assert noise.misplaced_tiles() == []
    with pytest.raises(ValueError, match="keep_predictions"):
        AccuracyAccumulator(masks, keep_predictions=False).misplaced_tiles()
