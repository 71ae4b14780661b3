"""Dataset layouts: raw (lung_ct_image/ or subset*/) and normalised, pairing, and the errors that name files."""

from __future__ import annotations

import shutil

import pytest

from vnet_accept.data.discovery import discover
from vnet_accept.data.uids import UidList
from vnet_accept.errors import DataError


def _move_scan(root, uid, folder):
    (root / folder).mkdir(exist_ok=True)
    for suffix in (".mhd", ".raw"):
        shutil.move(root / "lung_ct_image" / f"{uid}{suffix}", root / folder / f"{uid}{suffix}")


def test_the_merged_raw_layout_pairs_every_ct_with_its_mask(tiny_raw):
    dataset = discover(tiny_raw.root)
    assert dataset.normalized is None
    scans = dataset.require_raw().select(UidList(tiny_raw.uids, "list"))
    assert [s.uid for s in scans] == list(tiny_raw.uids)
    for scan in scans:
        assert scan.ct.parent.name == "lung_ct_image" and scan.mask.parent.name == "seg-lungs-LUNA16"
        assert scan.ct.name == scan.mask.name == f"{scan.uid}.mhd"


def test_the_original_subset_folders_are_accepted_alone_or_mixed(tiny_raw, tmp_path):
    root = shutil.copytree(tiny_raw.root, tmp_path / "luna16")
    uids = tiny_raw.uids
    _move_scan(root, uids[0], "subset0")
    _move_scan(root, uids[1], "subset9")
    layout = discover(root).require_raw()
    assert layout.uids == sorted(uids)
    assert layout.cts[uids[0]].parent.name == "subset0" and layout.cts[uids[1]].parent.name == "subset9"
    for uid in uids[2:]:
        _move_scan(root, uid, "subset3")
    (root / "lung_ct_image").rmdir()
    assert discover(root).require_raw().uids == sorted(uids)


def test_the_same_scan_in_two_ct_folders_is_an_error_naming_both(tiny_raw, tmp_path):
    root = shutil.copytree(tiny_raw.root, tmp_path / "luna16")
    uid = tiny_raw.uids[0]
    (root / "subset2").mkdir()
    shutil.copy(root / "lung_ct_image" / f"{uid}.mhd", root / "subset2")
    with pytest.raises(DataError, match=rf"scan {uid} is present twice: .*lung_ct_image.* and .*subset2"):
        discover(root)


def test_an_unpaired_ct_or_mask_is_a_per_scan_problem_naming_the_files(tiny_raw, tmp_path):
    root = shutil.copytree(tiny_raw.root, tmp_path / "luna16")
    no_mask, no_ct = tiny_raw.uids[0], tiny_raw.uids[1]
    (root / "seg-lungs-LUNA16" / f"{no_mask}.mhd").unlink()
    (root / "lung_ct_image" / f"{no_ct}.mhd").unlink()
    layout = discover(root).require_raw()
    scans = {s.uid: s for s in layout.select()}  # without a UID list every file found is selected
    assert set(scans) == set(tiny_raw.uids)
    assert scans[no_mask].problem(layout) == (
        f"CT {root / 'lung_ct_image' / no_mask}.mhd has no mask: expected {root / 'seg-lungs-LUNA16' / no_mask}.mhd")
    assert scans[no_ct].problem(layout).startswith(f"mask {root / 'seg-lungs-LUNA16' / no_ct}.mhd has no CT")
    assert scans[tiny_raw.uids[2]].problem(layout) is None


def test_selecting_uids_the_dataset_lacks_names_them(tiny_raw):
    layout = discover(tiny_raw.root).require_raw()
    with pytest.raises(DataError, match=r"1 of 2 UIDs from split.txt are not in the raw layout .*: 9\.9\.9"):
        layout.select(UidList((tiny_raw.uids[0], "9.9.9"), "split.txt"))


def test_both_layouts_under_one_root(tiny_normalized):
    dataset = discover(tiny_normalized)
    assert dataset.raw.uids == dataset.normalized.uids
    assert dataset.normalized.cts[dataset.raw.uids[0]].parent.name == "normalized_lung_ct"


@pytest.mark.parametrize(("keep", "message"), [
    ((), "holds no LUNA16 dataset"),
    (("lung_ct_image",), "has lung_ct_image/ but no mask folder seg-lungs-LUNA16/"),
    (("seg-lungs-LUNA16",), "has seg-lungs-LUNA16/ but no CT folder"),
])
def test_an_incomplete_root_says_which_folder_is_missing(tmp_path, keep, message):
    for name in keep:
        (tmp_path / name).mkdir()
    with pytest.raises(DataError, match=message):
        discover(tmp_path)


def test_a_missing_root_and_a_wrong_layout_say_what_to_do(tiny_raw, tiny_normalized, tmp_path):
    with pytest.raises(DataError, match="does not exist .*vnet-accept synth"):
        discover(tmp_path / "absent")
    with pytest.raises(DataError, match="run `vnet-accept normalize --luna16"):
        discover(tiny_raw.root).require_normalized()
    only_normalized = tmp_path / "normalized"
    for name in ("normalized_lung_ct", "normalized_lung_mask"):
        shutil.copytree(tiny_normalized / name, only_normalized / name)
    with pytest.raises(DataError, match="already normalised"):
        discover(only_normalized).require_raw()
