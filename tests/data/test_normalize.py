"""Normalisation (SPEC §4.2): the reference procedure's exact semantics, records, atomicity, lost workers, and the
real LUNA16 masks and CT slab."""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from vnet_accept.data import normalize as normalize_module
from vnet_accept.data.discovery import discover
from vnet_accept.data.mhd import read_metaimage
from vnet_accept.data.normalize import (
    AxisFit,
    Geometry,
    crop_or_pad,
    normalize_dataset,
    normalize_scan,
    normalize_volume,
)
from vnet_accept.data.parallel import WORKER_DIED
from vnet_accept.data.provenance import record_path
from vnet_accept.data.tiles import VOLUME_SHAPE
from vnet_accept.errors import DataError

REAL_MASKS = {  # SPEC §4.2: resampled shape and foreground voxels of the reference procedure
    "1.3.6.1.4.1.14519.5.2.1.6279.6001.105756658031515062000744821260": ((121, 156, 156), 433_968),
    "1.3.6.1.4.1.14519.5.2.1.6279.6001.108197895896446896160048741492": ((119, 152, 152), 308_103),
}
SLAB = "lidc-idri-0001-slab/1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192_slab16.mhd"


def reference_crop_or_pad(volume: np.ndarray, target: tuple[int, ...], pad_value: int) -> np.ndarray:
    """SPEC §4.2 step 2 written voxel by voxel, as the port does: target voxel i takes source voxel
    i - (t - n) // 2 when the axis is padded, i + (n - t) // 2 when cropped, or the pad value if outside."""
    out = np.empty(target, dtype=volume.dtype)
    shift = [-((t - n) // 2) if n < t else (n - t) // 2 for n, t in zip(volume.shape, target, strict=True)]
    for i in range(target[0]):
        for j in range(target[1]):
            for k in range(target[2]):
                src = (i + shift[0], j + shift[1], k + shift[2])
                inside = all(0 <= s < n for s, n in zip(src, volume.shape, strict=True))
                out[i, j, k] = volume[src] if inside else pad_value
    return out


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(*[st.integers(1, 9)] * 3), target=st.tuples(*[st.integers(1, 9)] * 3),
       seed=st.integers(0, 2**16))
def test_vectorised_crop_or_pad_equals_the_voxel_loop(shape, target, seed):
    volume = np.random.default_rng(seed).integers(-2000, 2000, size=shape).astype(np.int16)
    axes = [AxisFit.fit(a, n, t) for a, n, t in zip("zyx", shape, target, strict=True)]
    for fit, n, t in zip(axes, shape, target, strict=True):
        expected_offset = (t - n) // 2 if n < t else (n - t) // 2 if n > t else 0
        assert (fit.mode, fit.offset) == ("pad" if n < t else "crop" if n > t else "keep", expected_offset)
    pad_value = int(volume.min()) - 7
    expected = reference_crop_or_pad(volume, target, pad_value)
    np.testing.assert_array_equal(crop_or_pad(volume, axes, pad_value), expected)


def test_a_volume_already_of_the_target_shape_is_kept_as_is():
    volume = np.zeros(VOLUME_SHAPE, dtype=np.int16)
    geometry = Geometry.plan(VOLUME_SHAPE, (2.5, 2.5, 2.5))
    assert [a.mode for a in geometry.axes] == ["keep"] * 3
    assert crop_or_pad(volume, geometry.axes, -1) is volume


@settings(max_examples=100, deadline=None)
@given(shape=st.tuples(*[st.integers(1, 600)] * 3), spacing=st.tuples(*[st.floats(0.3, 5.0)] * 3))
def test_the_plan_follows_the_reference_formula(shape, spacing):
    expected = np.round(np.array(shape) * np.array(spacing) / 2.5)
    if expected.min() < 1:
        with pytest.raises(DataError, match="too small"):
            Geometry.plan(shape, spacing)
        return
    geometry = Geometry.plan(shape, spacing)
    assert geometry.resampled_shape == tuple(int(v) for v in expected)
    np.testing.assert_allclose(geometry.zoom_factors, expected / np.array(shape))


def test_scipy_writes_the_int16_zoom_rounded_half_away_from_zero():
    # The reference zooms the int16 array itself, so SciPy converts each interpolated value by adding +-0.5
    # and truncating. The real-mask figures of SPEC §4.2 hold only with this (see the real-mask test).
    volume = np.random.default_rng(3).integers(-1500, 1500, size=(9, 11, 13)).astype(np.int16)
    factors = (1.7, 0.6, 1.3)
    as_float = ndimage.zoom(volume.astype(np.float64), factors, order=3, mode="nearest")
    rounded = np.trunc(as_float + np.copysign(0.5, as_float)).astype(np.int16)
    np.testing.assert_array_equal(ndimage.zoom(volume, factors, order=3, mode="nearest"), rounded)


def test_normalize_volume_is_zoom_then_centred_crop_pad_with_the_resampled_minimum():
    rng = np.random.default_rng(5)
    volume = rng.integers(-1100, 800, size=(30, 40, 40)).astype(np.int16)
    spacing = (6.0, 4.0, 4.0)  # z 72 (pad), in-plane 64 (pad)
    out, geometry, pad_value = normalize_volume(volume, spacing, is_mask=False)
    resampled = ndimage.zoom(volume, geometry.zoom_factors, order=3, mode="nearest")
    assert resampled.shape == geometry.resampled_shape == (72, 64, 64)
    assert pad_value == resampled.min() < volume.min()  # cubic overshoot
    assert out.dtype == np.int16
    inside = (slice(28, 100), slice(48, 112), slice(48, 112))  # offsets (128 - 72) // 2 and (160 - 64) // 2
    np.testing.assert_array_equal(out[inside], resampled)
    outside = np.ones(VOLUME_SHAPE, dtype=bool)
    outside[inside] = False
    assert (out[outside] == pad_value).all()


def test_masks_are_thresholded_after_the_zoom():
    labels = np.zeros((20, 40, 40), dtype=np.int16)
    labels[5:15, 5:20, 5:20], labels[5:15, 22:35, 22:35], labels[8:12, 19:23, 19:23] = 3, 4, 5
    out, geometry, _ = normalize_volume(labels, (5.0, 3.0, 3.0), is_mask=True)
    resampled = ndimage.zoom(labels, geometry.zoom_factors, order=3, mode="nearest")
    assert set(np.unique(out)) == {0, 1}
    assert np.count_nonzero(out) == np.count_nonzero(resampled >= 1)


def test_normalize_scan_writes_the_three_outputs_and_a_traceable_record(tiny_raw, tmp_path):
    scan = discover(tiny_raw.root).require_raw().select()[0]
    record = normalize_scan(scan, tmp_path)
    ct = read_metaimage(tmp_path / "normalized_lung_ct" / f"{scan.uid}.mhd")
    mask = read_metaimage(tmp_path / "normalized_lung_mask" / f"{scan.uid}.mhd")
    source = read_metaimage(scan.ct)
    assert ct.array.shape == mask.array.shape == VOLUME_SHAPE and ct.array.dtype == np.int16
    assert ct.header.spacing_xyz == (2.5, 2.5, 2.5) and mask.header.compressed and not ct.header.compressed
    assert ct.header.origin_xyz == pytest.approx(source.header.origin_xyz)  # the reference's uncorrected origin
    assert record == json.loads(record_path(tmp_path, scan.uid).read_text())
    assert record["original"]["shape_zyx"] == list(source.array.shape)
    assert record["mask"]["foreground_voxels"] == np.count_nonzero(mask.array) > 0
    assert record["ct"]["pad_value"] == ct.array[0, 0, 0] == ct.array.min()
    axes = record["crop_pad"]["axes"]
    assert [a["offset"] for a in axes] == [(t - r) // 2 if r < t else (r - t) // 2 for r, t in
                                        zip(record["zoom"]["resampled_shape_zyx"], VOLUME_SHAPE, strict=True)]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [f"{scan.uid}.mhd", f"{scan.uid}.raw", f"{scan.uid}.json", f"{scan.uid}.mhd", f"{scan.uid}.zraw"])


def test_original_index_traces_a_normalised_voxel_back_to_the_scan():
    # B-splines reproduce a linear ramp exactly away from the borders, so the value of a normalised voxel
    # tells which original z it sampled.
    ramp = np.broadcast_to((np.arange(50) * 20).astype(np.int16)[:, None, None], (50, 30, 30)).copy()
    out, geometry, _ = normalize_volume(ramp, (3.3, 5.0, 5.0), is_mask=False)
    pad = geometry.axes[0].offset
    for k in range(pad + 10, pad + geometry.resampled_shape[0] - 10, 7):
        z_original = geometry.original_index((k, 80, 80))[0]
        assert out[k, 80, 80] == pytest.approx(20 * z_original, abs=1.0)
    corrected = geometry.corrected_origin_xyz((0.0, 0.0, 0.0))
    assert corrected[2] == pytest.approx(-pad * geometry.resampled_spacing[0])


def test_a_failure_half_way_through_a_scan_leaves_no_output_and_removes_stale_ones(tiny_raw, tmp_path, monkeypatch):
    scans = discover(tiny_raw.root).require_raw().select()[:2]
    assert normalize_dataset(scans, tmp_path).ok  # an earlier, complete run
    original = normalize_module.StagedOutputs.metaimage
    victim = scans[1].uid

    def failing_mask_write(self, array, path, *args, **kwargs):
        if Path(path).parent.name == "normalized_lung_mask" and Path(path).stem == victim:
            raise OSError(28, "No space left on device")
        return original(self, array, path, *args, **kwargs)

    monkeypatch.setattr(normalize_module.StagedOutputs, "metaimage", failing_mask_write)
    results = normalize_dataset(scans, tmp_path)
    assert [f.uid for f in results.failures] == [victim] and "No space left on device" in results.failures[0].reason
    assert set(results.results) == {s.uid for s in scans} - {victim}
    assert not list(tmp_path.rglob(f"{victim}.*")), "the failed scan kept outputs"
    assert not [p for p in tmp_path.rglob(".*")], "staging folders were left behind"


def test_an_interrupted_run_leaves_no_truncated_file(tiny_raw, tmp_path, monkeypatch):
    scans = discover(tiny_raw.root).require_raw().select()

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(normalize_module.StagedOutputs, "commit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        normalize_dataset(scans, tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def _crash_on(scan, victim: str, out_root: str):
    if scan.uid == victim:
        os._exit(3)  # what an out-of-memory kill looks like from the parent
    return normalize_scan(scan, out_root)


def test_a_worker_that_dies_is_a_reported_failure_and_no_other_scan_is_lost(tiny_raw, tmp_path):
    scans = discover(tiny_raw.root).require_raw().select()
    victim = scans[2].uid
    job = functools.partial(_crash_on, victim=victim, out_root=str(tmp_path))
    results = normalize_dataset(scans, tmp_path, jobs=2, job=job)
    assert [(f.uid, f.reason) for f in results.failures] == [(victim, WORKER_DIED)]
    assert set(results.results) == {s.uid for s in scans} - {victim}
    for uid in results.results:
        assert (tmp_path / "normalized_lung_ct" / f"{uid}.json").is_file()


def test_a_bad_scan_fails_alone_with_its_file_named(tiny_raw, tmp_path):
    root = shutil.copytree(tiny_raw.root, tmp_path / "luna16")
    uids = tiny_raw.uids
    (root / "seg-lungs-LUNA16" / f"{uids[0]}.mhd").unlink()
    raw = root / "lung_ct_image" / f"{uids[1]}.raw"
    raw.write_bytes(raw.read_bytes()[:-100])
    layout = discover(root).require_raw()
    results = normalize_dataset(layout.select(), root, jobs=1, layout=layout)
    reasons = {f.uid: f.reason for f in results.failures}
    assert reasons[uids[0]].startswith(f"CT {root / 'lung_ct_image' / uids[0]}.mhd has no mask")
    assert f"{uids[1]}.raw" in reasons[uids[1]] and "truncated" in reasons[uids[1]]
    assert set(results.results) == set(uids[2:])


@pytest.fixture(scope="module")
def real_luna16(shared_dir) -> Path:
    folder = shared_dir / "data" / "luna16" / "seg-lungs-LUNA16"
    if not folder.is_dir():
        pytest.skip(f"the real LUNA16 masks are absent ({folder}); pass --shared-dir / VNET_ACCEPT_SHARED pointing "
                    "at a shared folder with data/luna16/seg-lungs-LUNA16/")
    return folder


@pytest.mark.parametrize("uid", sorted(REAL_MASKS))
def test_real_luna16_masks_match_the_reference_figures(real_luna16, uid):
    image = read_metaimage(real_luna16 / f"{uid}.mhd")
    mask, geometry, _ = normalize_volume(image.array, image.header.spacing_zyx, is_mask=True)
    expected_shape, expected_foreground = REAL_MASKS[uid]
    assert geometry.resampled_shape == expected_shape
    assert np.count_nonzero(mask) == expected_foreground
    assert mask.shape == VOLUME_SHAPE and [a.mode for a in geometry.axes] == ["pad"] * 3


def test_the_real_ct_slab_normalises_to_a_padded_volume(shared_dir):
    path = shared_dir / "data" / SLAB
    if not path.is_file():
        pytest.skip(f"the real CT slab is absent ({path}); pass --shared-dir / VNET_ACCEPT_SHARED pointing at a "
                    "shared folder with data/lidc-idri-0001-slab/")
    image = read_metaimage(path)
    assert image.array.shape == (16, 512, 512) and image.array.min() == -2048
    ct, geometry, pad_value = normalize_volume(image.array, image.header.spacing_zyx, is_mask=False)
    assert geometry.resampled_shape == (16, 144, 144)
    assert [(a.mode, a.offset) for a in geometry.axes] == [("pad", 56), ("pad", 8), ("pad", 8)]
    resampled = ndimage.zoom(image.array, geometry.zoom_factors, order=3, mode="nearest")
    assert pad_value == resampled.min() < -2048  # overshoot below the out-of-field value
    np.testing.assert_array_equal(ct[56:72, 8:152, 8:152], resampled)
    outside = np.ones(VOLUME_SHAPE, dtype=bool)
    outside[56:72, 8:152, 8:152] = False
    assert (ct[outside] == pad_value).all()
