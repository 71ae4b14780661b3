"""MetaImage (``.mhd`` + ``.raw``/``.zraw``) reading with validation, and atomic writing, through SimpleITK.

SimpleITK does the actual reading and writing, but it is too forgiving to judge a dataset on its own: a
truncated ``.raw`` or a missing data file is reported as "No such file or directory", and a ``.zraw`` with
damaged bytes can decode "successfully" into wrong voxels. So :func:`read_metaimage` first checks the header
(3-D, element type, spacing, data file present and of the size the header implies) and afterwards checks a
compressed file's zlib Adler-32 trailer against the voxels SimpleITK returned. Every failure is a
:class:`DataError` naming the file and saying what to do.

Arrays are ``(Z, Y, X)`` as SimpleITK returns them; header vectors (spacing, origin, size) are ``(x, y, z)`` as
MetaImage stores them - the names say which order a value is in.

Writing goes through :class:`StagedOutputs`: files are written to a hidden temporary folder next to their
destination and renamed into place only when everything for one scan has been written, so an interrupted or
failed run leaves no truncated file (and no half of a CT/mask pair) under a final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.errors import DataError
from vnet_accept.io_utils import atomic_write_json

#: MetaImage element types and the numpy dtypes they map to.
MET_DTYPES = {
    "MET_CHAR": np.int8, "MET_UCHAR": np.uint8, "MET_SHORT": np.int16, "MET_USHORT": np.uint16,
    "MET_INT": np.int32, "MET_UINT": np.uint32, "MET_LONG": np.int64, "MET_ULONG": np.uint64,
    "MET_FLOAT": np.float32, "MET_DOUBLE": np.float64,
}
#: What LUNA16 CT scans and masks (raw and normalised) are stored as.
CT_TYPES = ("MET_SHORT",)
MASK_TYPES = ("MET_SHORT", "MET_UCHAR", "MET_CHAR", "MET_USHORT")


@dataclass(frozen=True)
class MetaHeader:
    """The fields of a ``.mhd`` header the gate relies on, validated. Vectors are in (x, y, z) order."""

    path: Path
    size_xyz: tuple[int, int, int]
    spacing_xyz: tuple[float, float, float]
    origin_xyz: tuple[float, float, float]
    direction: tuple[float, ...]
    element_type: str
    data_file: Path
    compressed: bool
    compressed_size: int | None
    msb: bool
    fields: dict[str, str]

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return self.size_xyz[::-1]

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        return self.spacing_xyz[::-1]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(MET_DTYPES[self.element_type])

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.size_xyz)) * self.dtype.itemsize


@dataclass(frozen=True)
class MetaImage:
    """A validated image: ``array`` is ``(Z, Y, X)`` with the header's dtype; ``header`` says where it came from."""

    array: np.ndarray
    header: MetaHeader
    keep_alive: object = field(default=None, repr=False, compare=False)  # the SimpleITK image behind a view


def parse_header(path: str | os.PathLike[str], allowed_types: Iterable[str] | None = None) -> MetaHeader:
    """Read and validate a ``.mhd`` header: 3-D, single channel, known element type (one of ``allowed_types``
    if given), spacing present and positive, data file present with the size the header implies."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read MetaImage header {path}: {exc.strerror or exc}") from None
    if b"\0" in raw[:4096]:
        raise DataError(f"{path} is not a MetaImage text header (binary content); expected 'Key = value' lines")
    fields: dict[str, str] = {}
    for line in raw.decode("latin-1").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break  # anything after it would be local binary data
    bad = _header_problem(fields)
    if bad:
        raise DataError(f"unreadable MetaImage header {path}: {bad}; the file is damaged or not a LUNA16 .mhd")
    element_type = fields["ElementType"]
    if allowed_types is not None and element_type not in tuple(allowed_types):
        raise DataError(f"{path}: ElementType {element_type} where {' or '.join(allowed_types)} is expected "
                        "(LUNA16 CT and masks are 16-bit integers); this is not a LUNA16 image or it was "
                        "converted - use the original file")
    size = tuple(int(v) for v in fields["DimSize"].split())
    spacing = tuple(float(v) for v in fields.get("ElementSpacing", fields.get("ElementSize", "")).split())
    origin = tuple(float(v) for v in (fields.get("Offset") or fields.get("Origin") or "0 0 0").split())
    direction = tuple(float(v) for v in (fields.get("TransformMatrix") or "1 0 0 0 1 0 0 0 1").split())
    compressed = fields.get("CompressedData", "False").lower() == "true"
    compressed_size = int(fields["CompressedDataSize"]) if fields.get("CompressedDataSize", "").isdigit() else None
    header = MetaHeader(path=path, size_xyz=size, spacing_xyz=spacing, origin_xyz=origin,  # type: ignore[arg-type]
                        direction=direction, element_type=element_type,
                        data_file=path.parent / fields["ElementDataFile"], compressed=compressed,
                        compressed_size=compressed_size,
                        msb=fields.get("BinaryDataByteOrderMSB", fields.get("ElementByteOrderMSB", "False"))
                        .lower() == "true", fields=fields)
    _check_data_file(header)
    return header


def _header_problem(fields: dict[str, str]) -> str | None:
    for key in ("NDims", "DimSize", "ElementType", "ElementDataFile"):
        if key not in fields:
            return f"no {key} line"
    if fields["NDims"] != "3":
        return f"NDims = {fields['NDims']}, a 3-D image is expected"
    if fields.get("ElementNumberOfChannels", "1") != "1":
        return f"ElementNumberOfChannels = {fields['ElementNumberOfChannels']}, one channel is expected"
    if fields["ElementType"] not in MET_DTYPES:
        return f"unknown ElementType {fields['ElementType']!r}"
    if fields["ElementDataFile"] in ("LOCAL", "LIST") or fields["ElementDataFile"].startswith("LIST"):
        return f"ElementDataFile = {fields['ElementDataFile']} (only a separate .raw/.zraw file is supported)"
    try:
        size = [int(v) for v in fields["DimSize"].split()]
        spacing_text = fields.get("ElementSpacing", fields.get("ElementSize"))
        if spacing_text is None:
            return "no ElementSpacing line (normalisation needs the voxel spacing)"
        spacing = [float(v) for v in spacing_text.split()]
        for key in ("Offset", "Origin", "TransformMatrix"):
            if fields.get(key):
                [float(v) for v in fields[key].split()]
    except ValueError:
        return "a DimSize/ElementSpacing/Offset/TransformMatrix value is not a number"
    if len(size) != 3 or min(size) < 1:
        return f"DimSize = {fields['DimSize']}, three positive sizes are expected"
    if len(spacing) != 3 or not all(s > 0 and np.isfinite(s) for s in spacing):
        return f"ElementSpacing = {spacing_text}, three positive spacings are expected"
    return None


def _check_data_file(header: MetaHeader) -> None:
    data = header.data_file
    if not data.is_file():
        raise DataError(f"{header.path}: its data file {data} is missing (ElementDataFile = "
                        f"{header.fields['ElementDataFile']}); copy the {data.suffix} file next to the header")
    actual = data.stat().st_size
    if header.compressed:
        if header.compressed_size is not None and actual != header.compressed_size:
            raise DataError(f"{data}: {actual:,} bytes where the header {header.path.name} says CompressedDataSize "
                            f"= {header.compressed_size:,}; the file is truncated or from another image - "
                            "replace it with the original")
        return
    header_size = int(header.fields.get("HeaderSize", "0") or 0)
    expected = header.nbytes + max(header_size, 0)
    if (header_size == -1 and actual < header.nbytes) or (header_size != -1 and actual != expected):
        raise DataError(f"{data}: {actual:,} bytes where the header {header.path.name} (DimSize "
                        f"{' '.join(map(str, header.size_xyz))}, {header.element_type}) needs {expected:,}; the "
                        "file is truncated or does not belong to this header - replace it with the original")


def read_metaimage(path: str | os.PathLike[str], allowed_types: Iterable[str] | None = None,
                   verify_checksum: bool = True, view: bool = False) -> MetaImage:
    """Read a validated MetaImage as a ``(Z, Y, X)`` array of its stored dtype (see :func:`parse_header`).

    ``verify_checksum``: check a ``.zraw``'s Adler-32 (SimpleITK does not). ``view``: return a read-only view of
    SimpleITK's buffer instead of a copy, for a caller that copies or reduces it at once; the view is only valid
    while the returned :class:`MetaImage` (which keeps the image alive) is referenced.
    """
    import SimpleITK as sitk

    header = parse_header(path, allowed_types)
    try:
        image = sitk.ReadImage(str(header.path))
        # A view of an image that is not kept alive is a dangling pointer (SPEC §8): MetaImage holds the image.
        array = sitk.GetArrayViewFromImage(image) if view else sitk.GetArrayFromImage(image)
    except RuntimeError as exc:
        raise DataError(f"SimpleITK cannot read {header.path} ({_first_error_line(exc)}); the data file "
                        f"{header.data_file.name} is damaged - replace it with the original") from None
    if array.shape != header.shape_zyx or array.dtype != header.dtype:
        raise DataError(f"{header.path}: SimpleITK returned {array.dtype}{array.shape} where the header says "
                        f"{header.dtype}{header.shape_zyx}; the file is damaged")
    if header.compressed and verify_checksum:
        _check_adler32(header, array)
    return MetaImage(array, header, image if view else None)


def _check_adler32(header: MetaHeader, array: np.ndarray) -> None:
    # MetaIO writes one zlib stream whose last 4 bytes are the Adler-32 of the uncompressed data (RFC 1950).
    # SimpleITK does not verify it, so damaged bytes can decode into wrong voxels without an error.
    with open(header.data_file, "rb") as fh:
        head = fh.read(2)
        fh.seek(-4, os.SEEK_END)
        trailer = int.from_bytes(fh.read(4), "big")
    if len(head) < 2 or head[0] & 0x0F != 8 or (head[0] << 8 | head[1]) % 31:
        raise DataError(f"{header.data_file}: not a zlib stream (CompressedData = True); the file is damaged - "
                        "replace it with the original")
    stored = array.astype(array.dtype.newbyteorder(">" if header.msb else "<"), copy=False)
    if zlib.adler32(memoryview(np.ascontiguousarray(stored)).cast("B")) != trailer:
        raise DataError(f"{header.data_file}: checksum mismatch - the compressed data is corrupt (it decodes to "
                        "voxels whose Adler-32 differs from the stored one); replace it with the original file")


def _first_error_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = [ln for ln in lines if ln.startswith("Reason")] or lines[-1:] or ["unknown error"]
    return reason[0][:200]


class StagedOutputs:
    """Write several files so that they appear under their final names together or not at all.

    ``metaimage``/``json`` write into a hidden temporary folder beside each destination; :meth:`commit` fsyncs
    and renames everything into place (data files before the headers that point at them, in the order staged);
    leaving the ``with`` block through an exception removes the temporary folders instead. Use as::

        with StagedOutputs() as stage:
            stage.metaimage(ct, ct_path, spacing_xyz, origin_xyz, compress=False)
            stage.json(record, record_path)
        # committed here
    """

    def __init__(self) -> None:
        self._tmp_dirs: dict[Path, Path] = {}
        self._moves: list[tuple[Path, Path]] = []

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.discard()

    def _tmp_for(self, final_dir: Path) -> Path:
        if final_dir not in self._tmp_dirs:
            final_dir.mkdir(parents=True, exist_ok=True)
            self._tmp_dirs[final_dir] = Path(tempfile.mkdtemp(prefix=".staging-", suffix=".tmp", dir=final_dir))
        return self._tmp_dirs[final_dir]

    def metaimage(self, array: np.ndarray, path: str | os.PathLike[str], spacing_xyz: Iterable[float],
                  origin_xyz: Iterable[float], compress: bool) -> None:
        """Stage ``array`` ``(Z, Y, X)`` as ``path`` (``.mhd``) plus ``.raw`` (or ``.zraw`` when ``compress``),
        identity direction."""
        import SimpleITK as sitk

        path = Path(path)
        tmp = self._tmp_for(path.parent)
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
        image.SetSpacing(tuple(float(s) for s in spacing_xyz))
        image.SetOrigin(tuple(float(o) for o in origin_xyz))
        sitk.WriteImage(image, str(tmp / path.name), useCompression=compress)
        data_name = parse_header(tmp / path.name).data_file.name
        self._moves.append((tmp / data_name, path.parent / data_name))
        self._moves.append((tmp / path.name, path))

    def json(self, obj: Any, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        staged = self._tmp_for(path.parent) / path.name
        atomic_write_json(staged, obj)
        self._moves.append((staged, path))

    def commit(self) -> None:
        for src, _ in self._moves:
            with open(src, "rb") as fh:
                os.fsync(fh.fileno())
        for src, dst in self._moves:
            os.replace(src, dst)
        self._moves.clear()

    def discard(self) -> None:
        for tmp in self._tmp_dirs.values():
            shutil.rmtree(tmp, ignore_errors=True)
        self._tmp_dirs.clear()
        self._moves.clear()


def remove_metaimage(path: str | os.PathLike[str]) -> None:
    """Delete a ``.mhd`` header and its data file if present (used before re-writing a failed scan's outputs)."""
    path = Path(path)
    with contextlib.suppress(DataError, OSError):
        data = parse_header(path).data_file
        data.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
