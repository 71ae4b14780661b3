"""The one definition of a tile and of the network's input scaling (SPEC §4.3).

Array convention: volumes are ``(Z, Y, X)`` = ``(D, H, W)`` as SimpleITK returns them; a tile is a
``(64, 80, 80)`` block of a ``(128, 160, 160)`` normalised volume; the network input for a batch of tiles is
``(N, 1, 64, 80, 80)`` float32.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

#: Normalised volume shape (z, y, x) after resampling to 2.5 mm and centred crop/pad.
VOLUME_SHAPE = (128, 160, 160)
#: Tile shape (z, y, x) = the network's spatial input size (D, H, W).
TILE_SHAPE = (64, 80, 80)
TILES_PER_VOLUME = 8
TILE_VOXELS = TILE_SHAPE[0] * TILE_SHAPE[1] * TILE_SHAPE[2]  # 409,600
#: Input scaling: clip HU to this window, then (HU + mean) / std, float32.
HU_CLIP = (-1000.0, 400.0)
INPUT_SHIFT = 642.794
INPUT_SCALE = 459.512
#: Bytes of one input tile (float32) and of one output tile (float32, 2 classes).
INPUT_TILE_BYTES = TILE_VOXELS * 4  # 1,638,400
OUTPUT_TILE_BYTES = TILE_VOXELS * 2 * 4  # 3,276,800


@dataclass(frozen=True)
class Tile:
    """Tile ``index`` (0–7) of a normalised volume: z outermost, then y, then x."""

    index: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < TILES_PER_VOLUME:
            raise ValueError(f"tile index must be 0..{TILES_PER_VOLUME - 1}, got {self.index}")

    @property
    def origin(self) -> tuple[int, int, int]:
        k = self.index
        return (TILE_SHAPE[0] * (k // 4), TILE_SHAPE[1] * ((k // 2) % 2), TILE_SHAPE[2] * (k % 2))

    @property
    def bounds(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """``((z0, z1), (y0, y1), (x0, x1))``, half-open."""
        return tuple((o, o + s) for o, s in zip(self.origin, TILE_SHAPE, strict=True))  # type: ignore[return-value]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in self.bounds)  # type: ignore[return-value]

    def crop(self, volume: np.ndarray) -> np.ndarray:
        """This tile's ``(64, 80, 80)`` block of a ``(128, 160, 160)`` volume (a view, no copy)."""
        _check_volume(volume, "volume")
        return volume[self.slices]


def all_tiles() -> tuple[Tile, ...]:
    """The 8 tiles in file order: z outermost, then y, then x."""
    return tuple(Tile(k) for k in range(TILES_PER_VOLUME))


def merge_tiles(tiles: Mapping[int, np.ndarray] | np.ndarray, fill: float | None = None) -> np.ndarray:
    """Reassemble a ``(128, 160, 160)`` volume from tiles ``{index: (64, 80, 80)}`` (or an ``(8, 64, 80, 80)``
    array), checking that every voxel is written exactly once.

    A missing tile (skipped for an empty mask) is filled with ``fill``; with ``fill=None`` it is an error.
    Raises ``ValueError`` naming the tile for a bad index or shape, or the voxel count covered other than once.
    """
    items = dict(enumerate(tiles)) if isinstance(tiles, np.ndarray) else dict(tiles)
    if not items:
        raise ValueError("no tiles to merge")
    for index, block in items.items():
        Tile(index)  # validates the index
        if block.shape != TILE_SHAPE:
            raise ValueError(f"tile {index} has shape {block.shape}, expected {TILE_SHAPE}")
    missing = [k for k in range(TILES_PER_VOLUME) if k not in items]
    if missing and fill is None:
        raise ValueError(f"tiles {missing} are missing; pass fill= to reassemble a volume without them")
    dtype = np.result_type(*(b.dtype for b in items.values()))
    volume = np.full(VOLUME_SHAPE, fill if fill is not None else 0, dtype=dtype)
    counts = coverage(items)
    if missing:
        counts[_union_mask(missing)] += 1
    if not (counts == 1).all():
        bad = int(np.count_nonzero(counts != 1))
        raise ValueError(f"the tile layout covers {bad} voxels other than exactly once")
    for index, block in items.items():
        volume[Tile(index).slices] = block
    return volume


def coverage(tile_indices: Iterable[int]) -> np.ndarray:
    """How many of the given tiles cover each voxel of a ``(128, 160, 160)`` volume, as an int32 count array."""
    counts = np.zeros(VOLUME_SHAPE, dtype=np.int32)
    for index in tile_indices:
        counts[Tile(index).slices] += 1
    return counts


def _union_mask(indices: Iterable[int]) -> np.ndarray:
    mask = np.zeros(VOLUME_SHAPE, dtype=bool)
    for index in indices:
        mask[Tile(index).slices] = True
    return mask


def _check_volume(volume: np.ndarray, name: str) -> None:
    if volume.shape != VOLUME_SHAPE:
        raise ValueError(f"{name} has shape {volume.shape}, expected the normalised {VOLUME_SHAPE} (z, y, x)")


def ct_to_input(hu: np.ndarray) -> np.ndarray:
    """Scale CT values (HU, any shape) to the network's input: ``(clip(HU, -1000, 400) + 642.794) / 459.512``."""
    clipped = np.clip(hu.astype(np.float32, copy=False), *HU_CLIP)
    return ((clipped + np.float32(INPUT_SHIFT)) / np.float32(INPUT_SCALE)).astype(np.float32, copy=False)


def ct_like_batch(n: int, spatial: tuple[int, int, int] = TILE_SHAPE, seed: int = 0) -> np.ndarray:
    """Seeded, CT-like network inputs ``(n, 1, D, H, W)`` float32 for parity and invariance tests.

    Each sample is a body ellipse (soft tissue) with two lung ellipsoids (air-filled parenchyma), a bright
    spine-like block, outside air, and noise, in HU, scaled by :func:`ct_to_input`. Samples differ in geometry so
    a batch has genuinely different statistics per sample (which is what exposes batch-dependent BN).
    """
    rng = np.random.default_rng(seed)
    d, h, w = spatial
    z, y, x = np.meshgrid(np.linspace(-1, 1, d), np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    out = np.empty((n, 1, d, h, w), dtype=np.float32)
    for i in range(n):
        body_r = rng.uniform(0.75, 0.95)
        vol = np.full((d, h, w), -1000.0, dtype=np.float32)
        vol[(y / body_r) ** 2 + (x / (body_r * 1.1)) ** 2 <= 1.0] = rng.uniform(20, 60)
        for side in (-1, 1):
            cx, cy = side * rng.uniform(0.3, 0.45), rng.uniform(-0.15, 0.05)
            rx, ry, rz = rng.uniform(0.2, 0.3), rng.uniform(0.35, 0.5), rng.uniform(0.7, 1.2)
            lung = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + (z / rz) ** 2 <= 1.0
            vol[lung] = rng.uniform(-900, -780)
        vol[(np.abs(x) < 0.1) & (y > 0.55) & (y < 0.75)] = rng.uniform(500, 900)  # vertebra
        vol += rng.normal(0, rng.uniform(15, 40), size=vol.shape).astype(np.float32)
        out[i, 0] = ct_to_input(vol)
    return out
