"""The synthetic LUNA16-like dataset: deterministic, realistic headers and HU values, LUNA16 mask labels."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vnet_accept.data.discovery import discover
from vnet_accept.data.mhd import parse_header, read_metaimage
from vnet_accept.data.synth import (
    HU_BONE,
    HU_LUNG,
    HU_OUTSIDE_FOV,
    PROFILES,
    draw_spec,
    full_size_spec,
    load_synthetic_dataset,
    render_scan,
    series_uid,
    synthesize_dataset,
)
from vnet_accept.data.uids import UID_PATTERN, read_uid_file


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_scan_n_does_not_depend_on_the_count(tiny_raw, tmp_path):
    again = synthesize_dataset(tmp_path / "again", scans=tiny_raw.specs.__len__(), seed=7, profile="tiny")
    assert _files(again.root) == _files(tiny_raw.root)
    fewer = synthesize_dataset(tmp_path / "fewer", scans=2, seed=7, profile="tiny")
    for uid in fewer.uids:
        for folder in ("lung_ct_image", "seg-lungs-LUNA16"):
            for path in (fewer.root / folder).glob(f"{uid}.*"):
                assert path.read_bytes() == (tiny_raw.root / folder / path.name).read_bytes()
    other = synthesize_dataset(tmp_path / "other", scans=1, seed=8, profile="tiny")
    assert other.uids[0] != tiny_raw.uids[0]


def test_uids_look_like_dicom_series_uids():
    uids = {series_uid(seed, n) for seed in range(5) for n in range(50)}
    assert len(uids) == 250
    for uid in uids:
        assert UID_PATTERN.match(uid) and len(uid) <= 64 and uid.startswith("1.3.6.1.4.1.99999.")
        assert not any(len(c) > 1 and c.startswith("0") for c in uid.split("."))
    assert series_uid(3, 12).startswith("1.3.6.1.4.1.99999.3.12.")


def test_a_uid_names_one_volume_another_kind_or_profile_is_another_scan():
    """Scan 1 of seed 0 is a chest scan in the gate's default dataset and an abdominal one among the self-test's
    held-out scans: they once shared a UID, and the report showed two error rates for "one" scan."""
    default = draw_spec(0, 1)
    assert default.uid == "1.3.6.1.4.1.99999.0.1.597108159012029533733642"  # the default scans keep their UIDs
    variants = {draw_spec(0, 1, kind="abdomen").uid, draw_spec(0, 1, profile="tiny").uid,
                draw_spec(0, 1, profile="full", kind="abdomen").uid, full_size_spec(0, 1).uid}
    assert len(variants) == 4 and default.uid not in variants
    assert draw_spec(0, 3).uid == draw_spec(0, 3, kind="abdomen").uid  # scan 3 is abdominal by default
    assert all(UID_PATTERN.match(uid) and len(uid) <= 64 for uid in variants)


def test_the_dataset_has_the_raw_layout_a_uid_list_and_its_description(tiny_raw):
    layout = discover(tiny_raw.root).require_raw()
    assert layout.uids == sorted(tiny_raw.uids)
    assert read_uid_file(tiny_raw.uid_file).uids == tiny_raw.uids
    assert tiny_raw.uid_file.read_bytes().endswith(b"\n")
    assert load_synthetic_dataset(tiny_raw.root) == tiny_raw


@pytest.mark.parametrize("profile", ["small", "full"])
def test_headers_are_realistic_metaimage(profile):
    lo, hi = PROFILES[profile].pixel_mm
    specs = [draw_spec(0, n, profile) for n in range(20)]
    assert all(lo <= s.pixel_mm <= hi and s.slice_mm in PROFILES[profile].slice_mm for s in specs)
    assert len({s.pixel_mm for s in specs}) == 20 and len({s.slice_mm for s in specs}) > 2
    assert all(s.origin_xyz[2] < 0 and s.origin_xyz[0] != 0 for s in specs)
    if profile == "small":
        assert all(50 <= s.n_slices <= 135 for s in specs)
        fov = [s.size_xy * s.pixel_mm for s in specs]  # a real field of view although the pixels are coarse
        assert 290 <= min(fov) and max(fov) <= 360


def test_written_headers_say_met_short_and_the_mask_is_compressed(tiny_raw):
    spec = tiny_raw.specs[0]
    ct = parse_header(tiny_raw.root / "lung_ct_image" / f"{spec.uid}.mhd")
    mask = parse_header(tiny_raw.root / "seg-lungs-LUNA16" / f"{spec.uid}.mhd")
    for header in (ct, mask):
        assert header.element_type == "MET_SHORT" and header.size_xyz == spec.shape_zyx[::-1]
        assert header.spacing_xyz == pytest.approx(spec.spacing_xyz)
        assert header.origin_xyz == pytest.approx(spec.origin_xyz)
    assert (ct.data_file.suffix, ct.compressed) == (".raw", False)
    assert (mask.data_file.suffix, mask.compressed) == (".zraw", True)


@pytest.fixture(scope="module")
def small_chest():
    spec = draw_spec(0, 0, "small")
    return spec, *render_scan(spec)


def test_hu_values_are_plausible(small_chest):
    spec, ct, mask = small_chest
    assert ct.dtype == np.int16 and ct.shape == spec.shape_zyx
    assert ct[:, 0, 0].tolist() == [HU_OUTSIDE_FOV] * spec.n_slices  # corners lie outside the circular FOV
    lungs = ct[(mask == 3) | (mask == 4)]
    assert abs(np.median(lungs) - HU_LUNG) < 60
    assert np.mean(lungs > -400) > 0.005  # vessels inside the lungs
    inside_fov = ct[ct > HU_OUTSIDE_FOV]
    assert np.mean(np.abs(inside_fov + 1000) < 80) > 0.05  # outside air
    assert np.mean(np.abs(inside_fov - 40) < 60) > 0.2  # soft tissue
    assert np.mean(np.abs(inside_fov - HU_BONE) < 100) > 0.005  # bone
    assert abs(np.median(ct[mask == 5]) + 1000) < 80  # the trachea is air


def test_masks_have_the_luna16_labels_on_the_right_sides(small_chest):
    spec, _, mask = small_chest
    assert mask.dtype == np.int16 and set(np.unique(mask)) == {0, 3, 4, 5}
    x = np.arange(spec.size_xy)
    centre = (spec.size_xy - 1) / 2
    assert (x[np.nonzero(mask == 3)[2]] < centre).all() and (x[np.nonzero(mask == 4)[2]] > centre).all()


def test_the_full_size_scan_has_real_geometry():
    spec = full_size_spec(n_slices=12)
    assert spec.shape_zyx == (12, 512, 512) and spec.spacing_xyz == (0.7, 0.7, 1.0)
    assert full_size_spec().shape_zyx == (300, 512, 512)


def test_a_written_scan_reads_back_as_rendered(tiny_raw):
    spec = tiny_raw.specs[1]
    ct, mask = render_scan(spec)
    np.testing.assert_array_equal(read_metaimage(tiny_raw.root / "lung_ct_image" / f"{spec.uid}.mhd").array, ct)
    np.testing.assert_array_equal(read_metaimage(tiny_raw.root / "seg-lungs-LUNA16" / f"{spec.uid}.mhd").array, mask)


def test_subset_layout(tmp_path):
    dataset = synthesize_dataset(tmp_path, scans=2, seed=1, profile="tiny", layout="subsets")
    assert sorted(p.name for p in tmp_path.iterdir() if re.match(r"subset\d", p.name)) == ["subset0", "subset1"]
    assert discover(tmp_path).require_raw().uids == sorted(dataset.uids)
