"""The reference port's post-processing loop, rebuilt as the benchmark baseline (SPEC §8, issue 4).

The port's ``vnet_postprocess.py`` builds its list of (UID, tile bounds) from the masks, then, for tile ``i``,
reads ``<i>_1.bin`` (matched by position), reshapes it to ``(-1, 2)``, takes ``argmax(1)``, and compares it
with the tile's crop of the binarised mask. The loop here is the one the gate's performance criterion names:
the compressed mask re-read (SimpleITK) and re-binarised for *every tile*. (The public script keeps each
binarised mask in a dict after its first read; the criterion's baseline, measured at about 70 tiles/s in
SPEC §8, does not.) It is kept only to measure against, and to check that the gate's post-processor counts
exactly the same errors (arg-max ties go to class 0 in both).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vnet_accept.data.tiles import TILE_SHAPE, all_tiles


def _load_label(mask_dir: Path, uid: str) -> np.ndarray:
    import SimpleITK as sitk

    image = sitk.ReadImage(str(mask_dir / f"{uid}.mhd"))
    img = sitk.GetArrayFromImage(image)
    if np.max(img) > 3400:  # the port's two binarisation branches
        img[img <= 3480] = 0
        img[img > 3480] = 1
    else:
        img[img != 0] = 1
    return img.astype(np.uint8)


def port_style_index(mask_dir: str | os.PathLike[str], uids: list[str]) -> list[tuple[str, tuple]]:
    """The port's ``make_dataset``: ``(uid, bounds)`` of every tile whose mask crop is not empty, in order."""
    mask_dir = Path(mask_dir)
    infos = []
    for uid in uids:
        label = _load_label(mask_dir, uid)
        for tile in all_tiles():
            if np.sum(label[tile.slices]) != 0:
                infos.append((uid, tile.bounds))
    return infos


def port_style_postprocess(result_dir: str | os.PathLike[str], mask_dir: str | os.PathLike[str],
                           infos: list[tuple[str, tuple]], output_index: int = 0) -> tuple[int, int]:
    """``(incorrect, voxels)`` over the tiles ``infos`` (from :func:`port_style_index`), outputs
    ``<i>_<output_index>.bin`` in ``result_dir``, the mask re-read for every tile."""
    result_dir, mask_dir = Path(result_dir), Path(mask_dir)
    incorrect = numel = 0
    for i, (uid, bounds) in enumerate(infos):
        result = np.fromfile(result_dir / f"{i}_{output_index}.bin", dtype="float32")
        result = result.reshape(-1, 2).argmax(1)
        (zs, ze), (ys, ye), (xs, xe) = bounds
        target = _load_label(mask_dir, uid)[zs:ze, ys:ye, xs:xe]
        assert target.shape == TILE_SHAPE
        target = target.reshape(target.size)
        numel += target.size
        incorrect += int((result != target).sum())
    return incorrect, numel
