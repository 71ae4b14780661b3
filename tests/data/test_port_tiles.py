"""The port's own tiles (``--prep-bin``: ``<i>.bin``, no manifest) judged by (UID, tile) through its numbering rebuilt
from the masks; a scan lost to the port's UID reader named; its info file's order checked (SPEC §4.3)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vnet_accept.data.port_tiles import bin_files, check_info_order, port_tiles
from vnet_accept.data.prepare import read_input_bin
from vnet_accept.data.uids import read_uid_file
from vnet_accept.errors import DataError
from vnet_accept.judge import data
from vnet_accept.results.synthetic import small_dataset


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """3 scans, 14 tiles (8 + 4 + 2; 10 skipped for an empty mask)."""
    return small_dataset(tmp_path_factory.mktemp("port-tiles"))


@pytest.fixture
def port_prep(small, tmp_path):
    """The tiles as the port's vnet_preprocess.py leaves them: the same <i>.bin files, no manifest."""
    folder = shutil.copytree(small.manifest.directory, tmp_path / "prep_bin")
    (folder / "manifest.json").unlink()
    return folder


def test_each_file_is_mapped_to_its_tile_and_judged_equal(small, port_prep):
    tiles = port_tiles(port_prep, read_uid_file(small.uid_file), small.root, uid_file=small.uid_file)
    assert [(e.file, e.uid, e.tile) for e in tiles.manifest.entries] == [
        (e.file, e.uid, e.tile) for e in small.manifest.entries]
    assert tiles.reading == "robust" and tiles.extra == () and tiles.note.startswith("14 files = the tiles of 3 UIDs")
    c = data.inputs_match_manifest(tiles.manifest, small.root, source=tiles.describe())
    assert c.verdict == "pass", c.explanation()
    assert "the port's tiles in" in c.basis


def test_two_files_swapped_on_disk_are_named(small, port_prep):
    a, b = port_prep / "3.bin", port_prep / "4.bin"
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)
    tiles = port_tiles(port_prep, read_uid_file(small.uid_file), small.root)
    c = data.inputs_match_manifest(tiles.manifest, small.root)
    assert c.verdict == "fail" and "tiles written under each other's numbers" in c.explanation().splitlines()[0]
    assert "3.bin" in c.explanation() and "4.bin" in c.explanation()


def test_a_last_uid_dropped_by_the_ports_reader_is_found_and_named(small, port_prep, tmp_path):
    """The UID file lacks its final newline; the port's scripts read it without its last line, so its prep_bin holds
    only the first two scans' tiles (8 + 4)."""
    uid_file = tmp_path / "test_uids.txt"
    uid_file.write_text(small.uid_file.read_text().rstrip("\n"))
    for name in bin_files(port_prep)[12:]:
        (port_prep / name).unlink()
    split = read_uid_file(uid_file)
    tiles = port_tiles(port_prep, split, small.root, uid_file=uid_file)
    assert tiles.reading == "port" and len(tiles.manifest.entries) == 12 and "read the port's way" in tiles.note
    assert data.inputs_match_manifest(tiles.manifest, small.root).verdict == "pass"
    coverage = data.uid_coverage(split, tiles.uids, tiles.describe(), uid_file=uid_file)
    assert coverage.verdict == "fail" and small.uids[-1] in coverage.reason
    assert "lacks its final newline and the port's reader drops it" in coverage.reason


def test_files_beyond_the_numbering_fail_and_missing_ones_are_named(small, port_prep):
    np.zeros((64, 80, 80), "<f4").tofile(port_prep / "14.bin")
    tiles = port_tiles(port_prep, read_uid_file(small.uid_file), small.root)
    c = data.inputs_match_manifest(tiles.manifest, small.root, extra_files=tiles.extra)
    assert tiles.extra == ("14.bin",) and c.verdict == "fail"
    assert "1 files in" in c.reason and "beyond the numbering of the split (14.bin)" in c.reason
    (port_prep / "14.bin").unlink()
    (port_prep / "13.bin").unlink()
    missing = data.inputs_match_manifest(port_tiles(port_prep, read_uid_file(small.uid_file), small.root).manifest,
                                         small.root)
    assert missing.verdict == "fail" and "13.bin" in missing.explanation()
    assert read_input_bin(port_prep / "0.bin").shape == (64, 80, 80)


def test_an_info_file_in_glob_order_is_reported_and_fails_only_for_batch_statistics(port_prep, tmp_path):
    files = bin_files(port_prep)
    info = tmp_path / "vnet_prep_bin.info"
    glob_order = sorted(files)  # 0.bin, 1.bin, 10.bin, 11.bin, ... as the port's gen_dataset_info.py lists them
    info.write_text("".join(f"{i} ./prep_bin/{name} 80 80\n" for i, name in enumerate(glob_order)))
    order = check_info_order(info, files)
    assert not order.in_order and order.complete and order.out_of_order[0] == (2, "10.bin")
    harmful = data.info_order(order, batch_dependent=True, onnx_label="submitted ONNX port.onnx")
    assert harmful.verdict == "fail" and "line 2 -> 10.bin" in harmful.reason and "batch statistics" in harmful.reason
    harmless = data.info_order(order, batch_dependent=False, onnx_label="reference export")
    assert harmless.verdict == "pass" and "does not change the outputs" in harmless.reason
    info.write_text("".join(f"{i} ./prep_bin/{i}.bin 80 80\n" for i in range(len(files) - 1)))
    short = check_info_order(info, files)
    assert short.in_order and short.unlisted == ["13.bin"]
    assert data.info_order(short, batch_dependent=False, onnx_label="x").verdict == "fail"


def test_a_folder_without_bin_files_is_refused(tmp_path):
    with pytest.raises(DataError, match="holds no <i>.bin files"):
        bin_files(tmp_path)
