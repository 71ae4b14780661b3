"""Mask reading for post-processing: once per volume, read ahead, same semantics as the data pipeline's."""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.data.prepare import load_normalized_mask, read_binary_mask
from vnet_accept.data.tiles import VOLUME_SHAPE, Tile
from vnet_accept.errors import DataError
from vnet_accept.metrics.masks import MaskSource
from vnet_accept.results.synthetic import lung_masks, write_normalized_dataset

UIDS = ("1.2.9.1", "1.2.9.2", "1.2.9.3", "1.2.9.4")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    masks = lung_masks(UIDS, seed=4)
    root = tmp_path_factory.mktemp("masks") / "luna16"
    write_normalized_dataset(root, masks)
    return root, masks


def test_read_binary_mask_matches_the_data_pipeline(dataset):
    root, masks = dataset
    for uid in UIDS:
        mask = read_binary_mask(root / "normalized_lung_mask" / f"{uid}.mhd")
        assert mask.dtype == bool and mask.shape == VOLUME_SHAPE
        assert np.array_equal(mask, masks[uid])
        assert np.array_equal(mask, load_normalized_mask(root, uid))


def test_a_mask_that_is_not_normalised_is_refused(tmp_path):
    labels = np.zeros(VOLUME_SHAPE, dtype=bool)
    labels[10:20, 10:20, 10:20] = True
    write_normalized_dataset(tmp_path, {"1.2.9.9": labels})
    import SimpleITK as sitk

    path = tmp_path / "normalized_lung_mask" / "1.2.9.9.mhd"
    raw = (labels * 3).astype(np.int16)  # LUNA16 labels 3/4/5, not binarised
    raw[0, 0, 0] = -1
    sitk.WriteImage(sitk.GetImageFromArray(raw), str(path), useCompression=True)
    with pytest.raises(DataError, match=r"mask values \[-1, 0, 3\], a normalised mask holds only 0 and 1"):
        read_binary_mask(path)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((64, 160, 160), np.int16)), str(path), useCompression=True)
    with pytest.raises(DataError, match=r"shape \(64, 160, 160\) .* a normalised mask is \(128, 160, 160\)"):
        read_binary_mask(path)


def test_a_corrupt_zraw_is_an_error_naming_it(tmp_path):
    write_normalized_dataset(tmp_path, {"1.2.9.8": np.ones(VOLUME_SHAPE, dtype=bool)})
    data = tmp_path / "normalized_lung_mask" / "1.2.9.8.zraw"
    blob = bytearray(data.read_bytes())
    blob[-2] ^= 0xFF  # the stored checksum: the voxels still decode, only the Adler-32 check sees it
    data.write_bytes(bytes(blob))
    header = tmp_path / "normalized_lung_mask" / "1.2.9.8.mhd"
    with pytest.raises(DataError, match="1.2.9.8.zraw: checksum mismatch"):
        read_binary_mask(header)
    assert read_binary_mask(header, verify_checksum=False).all()
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))
    for verify in (True, False):
        with pytest.raises(DataError, match="1.2.9.8"):
            read_binary_mask(header, verify_checksum=verify)


def test_each_volume_is_decoded_once_and_read_ahead(dataset):
    root, masks = dataset
    with MaskSource(root, cache_size=2, read_ahead=2) as source:
        for i, uid in enumerate(UIDS):
            source.prefetch(UIDS[i + 1:])
            for k in range(8):
                assert np.array_equal(source.tile(uid, k), Tile(k).crop(masks[uid]))
        assert dict(source.reads) == dict.fromkeys(UIDS, 1)
        assert not source.volume(UIDS[-1]).flags.writeable  # shared: nobody may change it
    with pytest.raises(DataError, match=r"scan 9.9 has no normalised mask under .* fix --uids"):
        MaskSource(root).volume("9.9")


def test_in_memory_masks(dataset):
    _, masks = dataset
    source = MaskSource(arrays=masks)
    assert source.tile(UIDS[0], Tile(5)).shape == (64, 80, 80)
    assert masks[UIDS[0]].flags.writeable  # the caller's array is left as it was
    assert UIDS[1] in source and "9.9" not in source
    with pytest.raises(ValueError, match="exactly one of root= and arrays="):
        MaskSource()
