"""The tile layout (SPEC §4.3): split/merge round trips, exact single coverage, and the input scaling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnet_accept.data.tiles import (
    INPUT_TILE_BYTES,
    TILE_SHAPE,
    TILES_PER_VOLUME,
    VOLUME_SHAPE,
    Tile,
    all_tiles,
    coverage,
    ct_to_input,
    merge_tiles,
)


def test_tile_k_covers_the_spec_ranges():
    for k in range(TILES_PER_VOLUME):
        z, y, x = 64 * (k // 4), 80 * ((k // 2) % 2), 80 * (k % 2)
        assert Tile(k).bounds == ((z, z + 64), (y, y + 80), (x, x + 80))
    assert INPUT_TILE_BYTES == 1_638_400
    with pytest.raises(ValueError, match="0..7"):
        Tile(8)


def test_the_eight_tiles_cover_every_voxel_exactly_once():
    assert (coverage(range(TILES_PER_VOLUME)) == 1).all()
    assert coverage([0, 0]).max() == 2


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.int16, np.float32, np.bool_]))
def test_split_then_merge_is_the_identity(seed, dtype):
    volume = np.random.default_rng(seed).integers(-1000, 1000, size=VOLUME_SHAPE, dtype=np.int16).astype(dtype)
    tiles = np.stack([tile.crop(volume) for tile in all_tiles()])
    assert tiles.shape == (TILES_PER_VOLUME, *TILE_SHAPE) and tiles.dtype == volume.dtype
    for tile in all_tiles():
        np.testing.assert_array_equal(tiles[tile.index], volume[tile.slices])
    np.testing.assert_array_equal(merge_tiles(tiles), volume)
    np.testing.assert_array_equal(merge_tiles({k: tiles[k] for k in reversed(range(8))}), volume)


@settings(max_examples=25, deadline=None)
@given(kept=st.sets(st.integers(0, 7), min_size=1, max_size=7), fill=st.integers(-5, 5))
def test_missing_tiles_are_filled_or_refused(kept, fill):
    tiles = {k: np.full(TILE_SHAPE, 100 + k, dtype=np.int16) for k in kept}
    volume = merge_tiles(tiles, fill=fill)
    for tile in all_tiles():
        expected = 100 + tile.index if tile.index in kept else fill
        assert (volume[tile.slices] == expected).all()
    with pytest.raises(ValueError, match=r"tiles \[.*\] are missing"):
        merge_tiles(tiles)


def test_merge_rejects_a_wrong_shape_or_index():
    with pytest.raises(ValueError, match=r"tile 3 has shape \(64, 80, 79\)"):
        merge_tiles({3: np.zeros((64, 80, 79))}, fill=0)
    with pytest.raises(ValueError, match="0..7"):
        merge_tiles({9: np.zeros(TILE_SHAPE)}, fill=0)
    with pytest.raises(ValueError, match=r"expected the normalised \(128, 160, 160\)"):
        Tile(0).crop(np.zeros((128, 160, 161)))


def test_input_scaling_clips_and_scales_to_the_spec_range():
    hu = np.array([-3000, -1000, 0, 400, 3000], dtype=np.int16)
    scaled = ct_to_input(hu)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, (np.clip(hu, -1000, 400) + 642.794) / 459.512, rtol=1e-6)
    assert scaled[0] == scaled[1] == pytest.approx(-0.7774, abs=1e-4)
    assert scaled[-1] == scaled[-2] == pytest.approx(2.2694, abs=1e-4)
