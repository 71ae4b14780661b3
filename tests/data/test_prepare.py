"""Network inputs: .bin and info-file round trips, the manifest keyed by (UID, tile), the skip rule, ground truth."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnet_accept.data.discovery import discover
from vnet_accept.data.prepare import (
    InfoLine,
    format_info,
    load_manifest,
    load_normalized_ct,
    load_normalized_mask,
    parse_info,
    preprocess_dataset,
    read_input_bin,
    write_input_bin,
)
from vnet_accept.data.tiles import INPUT_TILE_BYTES, TILE_SHAPE, VOLUME_SHAPE, Tile, ct_to_input, merge_tiles
from vnet_accept.data.uids import UidList, read_uid_file
from vnet_accept.errors import DataError


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), specials=st.lists(st.sampled_from(
    [np.nan, np.inf, -np.inf, -0.0, np.float32(1e-45), np.finfo(np.float32).max]), max_size=6))
def test_a_bin_file_is_raw_little_endian_float32_and_reads_back(tmp_path_factory, seed, specials):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(TILE_SHAPE, dtype=np.float32)
    for special in specials:
        values[tuple(rng.integers(0, n) for n in TILE_SHAPE)] = special
    path = tmp_path_factory.mktemp("bin") / "0.bin"
    data = write_input_bin(path, values)
    assert len(data) == path.stat().st_size == INPUT_TILE_BYTES
    bits = values.view(np.uint32)  # bit for bit, NaN and -0.0 included
    np.testing.assert_array_equal(np.fromfile(path, dtype="<u4").reshape(TILE_SHAPE), bits)
    np.testing.assert_array_equal(read_input_bin(path).view(np.uint32), bits)


def test_a_truncated_bin_is_named(tmp_path):
    (tmp_path / "3.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match=r"3\.bin: 100 bytes, a float32 \(64, 80, 80\) tile is 1,638,400"):
        read_input_bin(tmp_path / "3.bin")


path_text = st.text(alphabet="./_-abcXYZ0189", min_size=1, max_size=30)
info_lines = st.lists(st.builds(InfoLine, st.integers(0, 10**6), path_text,
                                st.integers(1, 4096), st.integers(1, 4096)), max_size=20)


@settings(max_examples=40, deadline=None)
@given(lines=info_lines, crlf=st.booleans())
def test_the_info_file_round_trips(lines, crlf):
    text = format_info(lines)
    assert parse_info(text.replace("\n", "\r\n") if crlf else text) == lines
    assert all(len(line.split(" ")) == 4 for line in text.splitlines())


def test_a_bad_info_line_is_named():
    with pytest.raises(DataError, match=r"x.info, line 2: '1 a.bin 80' is not"):
        parse_info("0 a.bin 80 80\n1 a.bin 80\n", "x.info")


@pytest.fixture(scope="module")
def prepared(tiny_normalized, tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "prep_bin"
    layout = discover(tiny_normalized).require_normalized()
    uids = read_uid_file(tiny_normalized / "test_uids.txt")
    return preprocess_dataset(layout, uids, out, info_dir_text="./prep_bin"), uids


def test_preprocess_writes_every_non_empty_tile_in_uid_and_tile_order(prepared, tiny_normalized):
    manifest, uids = prepared
    assert manifest.complete and manifest.uids == uids.uids and manifest.data["scans_used"] == len(uids)
    expected_keys = []
    for uid in uids:
        mask = load_normalized_mask(tiny_normalized, uid)
        expected_keys += [(uid, k) for k in range(8) if Tile(k).crop(mask).any()]
    assert [e.key for e in manifest.entries] == expected_keys
    assert [e.index for e in manifest.entries] == list(range(len(expected_keys)))
    assert sorted(p.name for p in manifest.directory.iterdir()) == sorted(
        [f"{i}.bin" for i in range(len(expected_keys))] + ["manifest.json"])
    assert manifest.verify() == []


def test_the_skip_rule_is_exercised_and_recorded(prepared, tiny_normalized):
    manifest, uids = prepared
    abdominal = uids.uids[3]  # synthetic scan 3 shows only the lung bases
    assert [(s.uid, s.tile) for s in manifest.skipped] == [(abdominal, k) for k in range(4)]
    assert all(s.reason == "mask crop has no foreground" for s in manifest.skipped)
    with pytest.raises(DataError, match="tile 0 .*mask crop has no foreground"):
        manifest.entry(abdominal, 0)
    mask = load_normalized_mask(tiny_normalized, abdominal)
    assert not mask[:64].any() and mask[64:].any()


def test_each_bin_holds_the_scaled_ct_crop_of_its_key(prepared, tiny_normalized):
    manifest, uids = prepared
    for uid in (uids.uids[0], uids.uids[3]):
        ct = load_normalized_ct(tiny_normalized, uid)
        mask = load_normalized_mask(tiny_normalized, uid)
        tiles = {}
        for tile in range(8):
            if (uid, tile) in manifest.by_key:
                entry = manifest.entry(uid, tile)
                assert entry.bounds == Tile(tile).bounds
                assert entry.foreground_voxels == np.count_nonzero(Tile(tile).crop(mask))
                tiles[tile] = manifest.read_input(entry)
                np.testing.assert_array_equal(tiles[tile], ct_to_input(Tile(tile).crop(ct)))
        merged = merge_tiles(tiles, fill=np.nan)
        covered = ~np.isnan(merged)
        np.testing.assert_array_equal(merged[covered], ct_to_input(ct)[covered])
    entry = manifest.entries[5]
    assert manifest.entry_for_stem("5") == entry and manifest.bin_path(entry).name == "5.bin"


def test_the_info_file_lists_each_bin_under_its_own_index(prepared):
    manifest, _ = prepared
    info_path = manifest.directory.parent / "vnet_prep_bin.info"
    assert manifest.data["info_file"]["path"] == str(info_path)
    lines = parse_info(info_path.read_text())
    assert lines == [InfoLine(e.index, f"./prep_bin/{e.file}", 80, 80) for e in manifest.entries]


def test_a_changed_bin_is_detected(prepared, tmp_path):
    manifest, _ = prepared
    copy = shutil.copytree(manifest.directory, tmp_path / "prep_bin")
    (copy / "2.bin").write_bytes(b"\0" * INPUT_TILE_BYTES)
    (copy / "99.bin").write_bytes(b"\0" * INPUT_TILE_BYTES)
    moved = load_manifest(copy)
    assert moved.verify() == [f"{copy / '2.bin'} differs from its sha256 in the manifest",
                              f"{copy / '99.bin'} is not in the manifest"]
    with pytest.raises(DataError, match=r"2\.bin: content differs"):
        moved.read_input(moved.entries[2])


def test_a_failed_scan_marks_the_manifest_incomplete_and_loading_refuses_it(tiny_normalized, tmp_path):
    root = shutil.copytree(tiny_normalized, tmp_path / "luna16")
    uids = read_uid_file(root / "test_uids.txt")
    bad = uids.uids[1]
    zraw = root / "normalized_lung_mask" / f"{bad}.zraw"
    data = bytearray(zraw.read_bytes())
    data[len(data) // 2] ^= 0x01
    zraw.write_bytes(bytes(data))
    out = tmp_path / "prep_bin"
    manifest = preprocess_dataset(discover(root).require_normalized(), uids, out)
    assert not manifest.complete and [f.uid for f in manifest.failures] == [bad]
    assert f"{bad}.zraw" in manifest.failures[0].reason
    assert bad not in manifest.uids and {e.uid for e in manifest.entries} == set(uids.uids) - {bad}
    assert manifest.verify() == []  # none of the failed scan's tiles was written
    with pytest.raises(DataError, match=r"preprocessing failed for 1 of 4 scans"):
        load_manifest(out)


def test_an_earlier_output_is_replaced_whole_and_a_foreign_folder_is_left_alone(tiny_normalized, tmp_path):
    layout = discover(tiny_normalized).require_normalized()
    all_uids = read_uid_file(tiny_normalized / "test_uids.txt")
    out = tmp_path / "prep_bin"
    first = preprocess_dataset(layout, all_uids, out)
    second = preprocess_dataset(layout, UidList(all_uids.uids[:1], "one"), out)
    assert len(second) == 8 < len(first)
    assert sorted(p.name for p in out.glob("*.bin")) == sorted(f"{i}.bin" for i in range(8))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty and holds no manifest.json"):
        preprocess_dataset(layout, all_uids, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_a_damaged_manifest_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"manifest_version": 1}))
    with pytest.raises(DataError, match="manifest.json is damaged"):
        load_manifest(tmp_path)


def test_ground_truth_loaders(tiny_normalized):
    uid = discover(tiny_normalized).normalized.uids[0]
    mask = load_normalized_mask(tiny_normalized, uid)
    assert mask.shape == VOLUME_SHAPE and mask.dtype == bool and mask.any()
    np.testing.assert_array_equal(Tile(6).crop(mask), mask[64:, 80:, :80])
    with pytest.raises(DataError, match="9.9 is not in the normalized layout"):
        load_normalized_mask(tiny_normalized, "9.9")
