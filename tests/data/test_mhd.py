"""MetaImage reading with validation and staged (all-or-nothing) writing."""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.data.mhd import CT_TYPES, MASK_TYPES, StagedOutputs, parse_header, read_metaimage
from vnet_accept.errors import DataError

SPACING_XYZ = (0.7421879768371582, 0.7421879768371582, 2.5)
ORIGIN_XYZ = (-182.5, -190.0, -313.75)


def _volume(shape=(6, 7, 8), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-2048, 3071, size=shape).astype(np.int16)


def _write(tmp_path, array, name="scan", compress=False):
    path = tmp_path / f"{name}.mhd"
    with StagedOutputs() as stage:
        stage.metaimage(array, path, SPACING_XYZ, ORIGIN_XYZ, compress=compress)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_a_written_image_reads_back_with_its_geometry(tmp_path, compress):
    volume = _volume()
    path = _write(tmp_path, volume, compress=compress)
    image = read_metaimage(path, CT_TYPES)
    np.testing.assert_array_equal(image.array, volume)
    header = image.header
    assert header.shape_zyx == volume.shape and header.size_xyz == (8, 7, 6)
    assert header.spacing_zyx == pytest.approx(SPACING_XYZ[::-1]) and header.origin_xyz == pytest.approx(ORIGIN_XYZ)
    assert header.element_type == "MET_SHORT" and header.compressed is compress
    assert header.data_file.suffix == (".zraw" if compress else ".raw")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["scan.mhd", header.data_file.name])


def test_staged_outputs_leave_nothing_when_the_block_fails(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), StagedOutputs() as stage:
        stage.metaimage(_volume(), tmp_path / "ct" / "a.mhd", SPACING_XYZ, ORIGIN_XYZ, compress=False)
        stage.json({"x": 1}, tmp_path / "ct" / "a.json")
        raise RuntimeError("boom")
    assert list((tmp_path / "ct").iterdir()) == []


def test_staged_outputs_replace_existing_files_whole(tmp_path):
    path = _write(tmp_path, _volume(seed=1))
    new = _volume(seed=2)
    _write(tmp_path, new)
    np.testing.assert_array_equal(read_metaimage(path).array, new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.mhd", "scan.raw"]


def test_an_unreadable_header_names_the_file(tmp_path):
    (tmp_path / "bad.mhd").write_bytes(b"\x00\x01\x02 not a header")
    with pytest.raises(DataError, match=r"bad\.mhd is not a MetaImage text header"):
        read_metaimage(tmp_path / "bad.mhd")
    (tmp_path / "half.mhd").write_text("ObjectType = Image\nNDims = 3\nDimSize = 8 7\n")
    with pytest.raises(DataError, match=r"unreadable MetaImage header .*half\.mhd: no ElementType line"):
        read_metaimage(tmp_path / "half.mhd")


@pytest.mark.parametrize(("edit", "message"), [
    (("NDims = 3", "NDims = 2"), "NDims = 2, a 3-D image is expected"),
    (("DimSize = 8 7 6", "DimSize = 8 7"), "three positive sizes"),
    (("ElementSpacing = ", "ElementSpacing = 0 "), "three positive spacings"),
    (("ElementSpacing = ", "Unrelated = "), "no ElementSpacing line"),
    (("DimSize = 8 7 6", "DimSize = 8 seven 6"), "not a number"),
])
def test_a_damaged_header_field_is_named(tmp_path, edit, message):
    path = _write(tmp_path, _volume())
    path.write_text(path.read_text().replace(*edit))
    with pytest.raises(DataError, match=message):
        parse_header(path)


def test_a_missing_data_file_is_named(tmp_path):
    path = _write(tmp_path, _volume(), compress=True)
    (tmp_path / "scan.zraw").unlink()
    with pytest.raises(DataError, match=r"scan\.mhd: its data file .*scan\.zraw is missing"):
        read_metaimage(path)


@pytest.mark.parametrize("delta", [-10, +2])
def test_a_raw_file_whose_size_disagrees_with_the_header_is_named(tmp_path, delta):
    path = _write(tmp_path, _volume())
    raw = tmp_path / "scan.raw"
    data = raw.read_bytes()
    raw.write_bytes(data[:delta] if delta < 0 else data + b"\0" * delta)
    with pytest.raises(DataError, match=rf"scan\.raw: {len(data) + delta:,} bytes where the header scan\.mhd .* "
                                        rf"needs {len(data):,}"):
        read_metaimage(path)


def test_a_truncated_zraw_is_named(tmp_path):
    path = _write(tmp_path, _volume(), compress=True)
    zraw = tmp_path / "scan.zraw"
    zraw.write_bytes(zraw.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"scan\.zraw: .* CompressedDataSize"):
        read_metaimage(path)


def test_a_corrupt_zraw_that_still_decodes_is_caught_by_its_checksum(tmp_path):
    # SimpleITK decodes this without complaint into wrong voxels; the Adler-32 trailer exposes it.
    volume = np.zeros((20, 30, 30), dtype=np.int16)
    volume[5:15, 10:20, 10:20] = 4
    path = _write(tmp_path, volume, compress=True)
    zraw = tmp_path / "scan.zraw"
    data = bytearray(zraw.read_bytes())
    data[len(data) // 2] ^= 0x10
    zraw.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"scan\.zraw: .*(checksum mismatch|damaged)"):
        read_metaimage(path)


def test_a_wrong_element_type_is_named(tmp_path):
    path = _write(tmp_path, np.zeros((4, 5, 6), dtype=np.float32))
    with pytest.raises(DataError, match=r"scan\.mhd: ElementType MET_FLOAT where MET_SHORT is expected"):
        read_metaimage(path, CT_TYPES)
    uchar = _write(tmp_path, np.ones((4, 5, 6), dtype=np.uint8), name="mask")
    assert read_metaimage(uchar, MASK_TYPES).array.dtype == np.uint8


def test_a_damaged_checksum_trailer_is_reported_as_corruption(tmp_path):
    path = _write(tmp_path, _volume(), compress=True)
    zraw = tmp_path / "scan.zraw"
    data = bytearray(zraw.read_bytes())
    data[-1] ^= 0xFF  # the voxels decode correctly; only the stored Adler-32 disagrees
    zraw.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"scan\.zraw: checksum mismatch"):
        read_metaimage(path)
