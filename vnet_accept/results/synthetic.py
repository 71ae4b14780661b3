"""Synthetic ground truth and outputs with *known* errors, for the post-processing tests and benchmarks.

* :func:`write_normalized_dataset` writes a small dataset directly in the normalised layout (``(128, 160,
  160)`` int16 CT and 0/1 mask per scan, the mask compressed like LUNA16's), with a UID file - no resampling,
  so a test gets a dataset in a fraction of a second. :func:`lung_masks` draws masks whose lungs cover chosen
  tiles (the others are empty, so the tile skip rule is exercised).
* :func:`planted_output` builds one tile's ``(64, 80, 80, 2)`` float32 log-probabilities whose arg-max equals a
  given prediction exactly, optionally with exact ties (which count as class 0, like ``argmax``).
* :func:`plant_outputs` does it for every tile of a manifest with a chosen fraction of wrong voxels and writes
  the outputs in a result layout; it returns the number of wrong voxels it planted per tile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.data.discovery import NORMALIZED_CT_DIR, NORMALIZED_MASK_DIR
from vnet_accept.data.tiles import TILE_SHAPE, TILES_PER_VOLUME, VOLUME_SHAPE, Tile
from vnet_accept.data.uids import format_uid_text
from vnet_accept.metrics.masks import MaskSource

SPACING_XYZ = (2.5, 2.5, 2.5)


def synthetic_uid(seed: int, index: int) -> str:
    """A DICOM-style series UID for synthetic test scans (digits and dots only)."""
    return f"1.3.6.1.4.1.99998.{seed}.{index + 1}"


def lung_masks(uids: Sequence[str], tiles: Mapping[str, Sequence[int]] | None = None,
               seed: int = 0) -> dict[str, np.ndarray]:
    """``{uid: (128, 160, 160) bool}``: a blob of lung (an ellipsoid, jittered per scan) in each tile listed for
    the scan (default: all 8); the other tiles are empty."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[:TILE_SHAPE[0], :TILE_SHAPE[1], :TILE_SHAPE[2]]
    out = {}
    for uid in uids:
        mask = np.zeros(VOLUME_SHAPE, dtype=bool)
        for k in (tiles or {}).get(uid, range(TILES_PER_VOLUME)):
            cz, cy, cx = rng.uniform(0.35, 0.65, 3) * TILE_SHAPE
            rz, ry, rx = rng.uniform(0.2, 0.4, 3) * TILE_SHAPE
            mask[Tile(k).slices] = ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
        out[uid] = mask
    return out


def write_normalized_dataset(root: str | os.PathLike[str], masks: Mapping[str, np.ndarray],
                             seed: int = 0) -> Path:
    """Write ``normalized_lung_ct/<uid>.mhd`` (int16 HU: -850 in the lungs, +40 elsewhere, noise) and
    ``normalized_lung_mask/<uid>.mhd`` + ``.zraw`` (0/1) for every mask, and ``test_uids.txt``; returns it."""
    from vnet_accept.data.mhd import StagedOutputs

    root = Path(root)
    rng = np.random.default_rng(seed)
    with StagedOutputs() as stage:
        for uid, mask in masks.items():
            ct = np.where(mask, -850, 40).astype(np.int16) + rng.integers(-20, 20, VOLUME_SHAPE, dtype=np.int16)
            stage.metaimage(ct, root / NORMALIZED_CT_DIR / f"{uid}.mhd", SPACING_XYZ, (0.0, 0.0, 0.0),
                            compress=False)
            stage.metaimage(mask.astype(np.int16), root / NORMALIZED_MASK_DIR / f"{uid}.mhd", SPACING_XYZ,
                            (0.0, 0.0, 0.0), compress=True)
    uid_file = root / "test_uids.txt"
    uid_file.write_text(format_uid_text(masks))
    return uid_file


def planted_output(prediction: np.ndarray, rng: np.random.Generator, ties: np.ndarray | None = None) -> np.ndarray:
    """``(64, 80, 80, 2)`` float32 log-probabilities (log-softmax of random logits) whose arg-max is
    ``prediction`` ((64, 80, 80) bool) everywhere; where ``ties`` is True both classes are equal (log 0.5),
    which counts as class 0."""
    margin = rng.uniform(0.05, 6.0, prediction.shape).astype(np.float32)
    logit = np.where(prediction, margin, -margin)  # logit of class 1 vs class 0
    out = np.empty((*prediction.shape, 2), dtype=np.float32)
    out[..., 1] = -np.logaddexp(0.0, -logit)  # log sigmoid(logit)
    out[..., 0] = -np.logaddexp(0.0, logit)
    if ties is not None:
        out[ties] = np.float32(np.log(0.5))
    return out


@dataclass(frozen=True)
class SmallDataset:
    """What :func:`small_dataset` wrote: the root (normalised layout), UID file, masks and prepared tiles."""

    root: Path
    uid_file: Path
    masks: dict[str, np.ndarray]
    manifest: Any

    @property
    def uids(self) -> tuple[str, ...]:
        return tuple(self.masks)


def small_dataset(directory: str | os.PathLike[str], tiles: Sequence[Sequence[int]] = ((0, 1, 2, 3, 4, 5, 6, 7),
                  (0, 1, 2, 3), (2, 5)), seed: int = 0) -> SmallDataset:
    """A normalised dataset of ``len(tiles)`` scans whose lungs cover the given tiles, preprocessed into
    ``directory/prep_bin`` (the default: 14 tiles of 3 scans, 10 tiles skipped for an empty mask)."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.prepare import preprocess_dataset
    from vnet_accept.data.uids import read_uid_file

    directory = Path(directory)
    uids = [synthetic_uid(seed, i) for i in range(len(tiles))]
    masks = lung_masks(uids, dict(zip(uids, tiles)), seed=seed)
    root = directory / "luna16"
    uid_file = write_normalized_dataset(root, masks, seed=seed)
    manifest = preprocess_dataset(discover(root).require_normalized(), read_uid_file(uid_file),
                                  directory / "prep_bin")
    return SmallDataset(root, uid_file, masks, manifest)


def plant_outputs(manifest, masks: MaskSource, out_dir: str | os.PathLike[str] | None, layout: str = "ais_bench",
                  error_fraction: float = 0.01, tie_fraction: float = 0.0, seed: int = 0,
                  device_id: int = 0) -> dict[tuple[str, int], int]:
    """Write an output for every tile of ``manifest`` into ``out_dir`` (``layout``) whose prediction is the mask
    with ``error_fraction`` of the voxels flipped and ``tie_fraction`` set to exact ties (class 0). Returns
    ``{(uid, tile): wrong voxels}`` - what a correct post-processor must count."""
    from vnet_accept.results.layouts import write_output

    rng = np.random.default_rng(seed)
    expected = {}
    for entry in manifest.entries:
        mask = masks.tile(entry.uid, entry.tile)
        flip = rng.random(TILE_SHAPE) < error_fraction
        prediction = mask ^ flip
        ties = rng.random(TILE_SHAPE) < tie_fraction if tie_fraction else None
        if ties is not None:
            prediction = prediction & ~ties  # a tie predicts class 0
        expected[entry.key] = int(np.count_nonzero(prediction != mask))
        if out_dir is not None:
            write_output(out_dir, entry.stem, planted_output(prediction, rng, ties), layout, device_id)
    return expected
