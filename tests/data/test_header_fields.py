"""Issue 12: every MetaImage field the reader uses is validated and named; the data file stays in the header's
folder; an absurd geometry is named as the header field, never as "out of memory"."""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.data.mhd import StagedOutputs, parse_header, read_metaimage
from vnet_accept.data.normalize import Geometry
from vnet_accept.errors import DataError


def _write(tmp_path, compress=False, name="scan"):
    path = tmp_path / f"{name}.mhd"
    with StagedOutputs() as stage:
        stage.metaimage(np.zeros((6, 7, 8), np.int16), path, (0.7, 0.7, 1.25), (0.0, 0.0, 0.0), compress=compress)
    return path


def _set(path, key, value):
    """Set ``key`` in place (ElementDataFile must stay last: the reader stops there), or add it first."""
    lines = path.read_text().splitlines()
    if any(ln.split("=")[0].strip() == key for ln in lines):
        lines = [f"{key} = {value}" if ln.split("=")[0].strip() == key else ln for ln in lines]
    else:
        lines.insert(1, f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("key", "value"), [
    ("NDims", "three"),
    ("DimSize", "8 7 x"),
    ("DimSize", "8 7 0"),
    ("DimSize", "8 7 6 5"),
    ("ElementSpacing", "0.7 0.7"),
    ("ElementSpacing", "0.7 nan 1.25"),
    ("ElementSpacing", "0.7 -0.7 1.25"),
    ("ElementSpacing", "1e9 1e9 1e9"),
    ("Offset", "0 0"),
    ("Offset", "0 zero 0"),
    ("TransformMatrix", "1 0 0 0 1 0 0 0"),
    ("CompressedData", "yes please"),
    ("CompressedDataSize", "big"),
    ("HeaderSize", "-7"),
    ("HeaderSize", "lots"),
    ("BinaryDataByteOrderMSB", "sometimes"),
    ("ElementNumberOfChannels", "3"),
    ("ElementType", "MET_COMPLEX"),
])
def test_a_malformed_field_is_named_with_its_value(tmp_path, key, value):
    path = _write(tmp_path)
    _set(path, key, value)
    with pytest.raises(DataError) as caught:
        parse_header(path)
    message = str(caught.value)
    assert key in message and str(path) in message and "replace it with the original" in message


@pytest.mark.parametrize("name", ["../scan.raw", "/etc/passwd", "sub/scan.raw", "..", "sub\\scan.raw"])
def test_the_data_file_is_confined_to_the_header_folder(tmp_path, name):
    path = _write(tmp_path)
    _set(path, "ElementDataFile", name)
    with pytest.raises(DataError, match="ElementDataFile = .*plain file name in the header's own folder"):
        parse_header(path)


def test_an_empty_or_missing_or_folder_data_file_is_named(tmp_path):
    mask = _write(tmp_path, compress=True, name="mask")
    zraw = parse_header(mask).data_file
    zraw.write_bytes(b"")
    with pytest.raises(DataError, match=rf"{zraw}: empty \(0 bytes\).*CompressedData = True"):
        read_metaimage(mask)
    zraw.unlink()
    zraw.mkdir()
    with pytest.raises(DataError, match="is a folder"):
        parse_header(mask)


def test_an_empty_header_or_a_folder_is_named(tmp_path):
    (tmp_path / "empty.mhd").write_text("")
    with pytest.raises(DataError, match="empty.mhd is empty"):
        parse_header(tmp_path / "empty.mhd")
    (tmp_path / "dir.mhd").mkdir()
    with pytest.raises(DataError, match="dir.mhd is a folder"):
        parse_header(tmp_path / "dir.mhd")


def test_an_absurd_but_well_formed_geometry_is_named_before_resampling():
    with pytest.raises(DataError, match="ElementSpacing or DimSize is wrong"):
        Geometry.plan((700, 512, 512), (50.0, 50.0, 50.0))  # 14 m along z: would need terabytes
    assert Geometry.plan((300, 512, 512), (1.0, 0.7, 0.7)).resampled_shape == (120, 143, 143)


def test_good_headers_still_read(tmp_path):
    path = _write(tmp_path, compress=True)
    header = parse_header(path)
    assert header.size_xyz == (8, 7, 6) and header.spacing_xyz == (0.7, 0.7, 1.25) and header.compressed
    assert read_metaimage(path).array.shape == (6, 7, 8)
