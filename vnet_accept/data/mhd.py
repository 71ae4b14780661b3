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
failed run leaves no truncated file (and no half of a CT/mask pair) under a final name. The folder's name holds
the host and process id, so the next run into the same place removes what a killed run left
(:func:`remove_stale_staged`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.errors import DataError
from vnet_accept.io_utils import atomic_write_json, remove_stale_staging, staging_dir

#: Prefix of :class:`StagedOutputs`' hidden folders (``.staging-<host>-<pid>-<random>.tmp``).
STAGING_PREFIX = ".staging-"

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


#: Plausible voxel spacing (mm): LUNA16 scans are 0.46-2.5 mm; anything outside this is a damaged header (and a
#: spacing of kilometres would make normalisation try to allocate terabytes).
SPACING_RANGE_MM = (1e-3, 50.0)
#: Largest DimSize per axis accepted (LUNA16: 512 x 512 x <= 764).
MAX_DIM = 65_536
_BOOLEAN = {"true": True, "false": False}


def parse_header(path: str | os.PathLike[str], allowed_types: Iterable[str] | None = None) -> MetaHeader:
    """Read and validate a ``.mhd`` header: 3-D, single channel, known element type (one of ``allowed_types``
    if given), every field the gate uses well-formed (each problem names its field), the data file a plain name
    in the header's own folder, present and of the size the header implies."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"MetaImage header {path} is a folder; a <uid>.mhd file is expected") from None
    except OSError as exc:
        raise DataError(f"cannot read MetaImage header {path}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise DataError(f"MetaImage header {path} is empty; the file is damaged - replace it with the original")
    if b"\0" in raw[:4096]:
        raise DataError(f"{path} is not a MetaImage text header (binary content); expected 'Key = value' lines")
    fields: dict[str, str] = {}
    for line in raw.decode("latin-1").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break  # anything after it would be local binary data
    try:
        values = _validated(fields)
    except _FieldError as exc:
        raise DataError(f"unreadable MetaImage header {path}: {exc}; the file is damaged or not a LUNA16 .mhd - "
                        "replace it with the original") from None
    element_type = fields["ElementType"]
    if allowed_types is not None and element_type not in tuple(allowed_types):
        raise DataError(f"{path}: ElementType {element_type} where {' or '.join(allowed_types)} is expected "
                        "(LUNA16 CT and masks are 16-bit integers); this is not a LUNA16 image or it was "
                        "converted - use the original file")
    header = MetaHeader(path=path, size_xyz=values["size"], spacing_xyz=values["spacing"],
                        origin_xyz=values["origin"], direction=values["direction"], element_type=element_type,
                        data_file=path.parent / fields["ElementDataFile"], compressed=values["compressed"],
                        compressed_size=values["compressed_size"], msb=values["msb"], fields=fields)
    _check_data_file(header, values["header_size"])
    return header


class _FieldError(ValueError):
    """One header field that is missing or malformed; the message names it."""


def _numbers(fields: dict[str, str], key: str, count: int, kind: type, expect: str) -> tuple:
    """``fields[key]`` as ``count`` numbers of ``kind``; ``expect`` says what is expected (for the message)."""
    text = fields.get(key)
    try:
        values = tuple(kind(v) for v in str(text).split())
    except ValueError:
        raise _FieldError(f"{key} = {text!r}: a value is not a number ({expect} expected)") from None
    if len(values) != count:
        raise _FieldError(f"{key} = {text!r}: {len(values)} value{'s' if len(values) != 1 else ''} where {expect} "
                          "are expected" if count > 1 else f"{key} = {text!r}: {expect} expected")
    if kind is float and not all(np.isfinite(values)):
        raise _FieldError(f"{key} = {text!r}: values must be finite ({expect} expected)")
    return values


def _boolean(fields: dict[str, str], key: str, default: bool) -> bool:
    if key not in fields:
        return default
    value = _BOOLEAN.get(fields[key].lower())
    if value is None:
        raise _FieldError(f"{key} = {fields[key]!r}, True or False expected")
    return value


def _validated(fields: dict[str, str]) -> dict[str, Any]:
    """Every field the reader uses, checked and converted; :class:`_FieldError` names the first bad one."""
    for key in ("NDims", "DimSize", "ElementType", "ElementDataFile"):
        if key not in fields:
            raise _FieldError(f"no {key} line")
    if fields["NDims"] != "3":
        raise _FieldError(f"NDims = {fields['NDims']}, a 3-D image is expected")
    if fields.get("ElementNumberOfChannels", "1") != "1":
        raise _FieldError(f"ElementNumberOfChannels = {fields['ElementNumberOfChannels']}, one channel is expected")
    if fields["ElementType"] not in MET_DTYPES:
        raise _FieldError(f"unknown ElementType {fields['ElementType']!r} (expected one of "
                          f"{', '.join(MET_DTYPES)})")
    name = fields["ElementDataFile"]
    if name in ("LOCAL", "LIST") or name.startswith("LIST"):
        raise _FieldError(f"ElementDataFile = {name} (only a separate .raw/.zraw file is supported)")
    if not name or name in (".", "..") or "/" in name or "\\" in name or Path(name).is_absolute():
        raise _FieldError(f"ElementDataFile = {name!r}: the data file must be a plain file name in the header's own "
                          "folder (no path); copy the .raw/.zraw next to the header and name it there")
    size = _numbers(fields, "DimSize", 3, int, "three positive sizes")
    if not all(1 <= v <= MAX_DIM for v in size):
        raise _FieldError(f"DimSize = {fields['DimSize']}: three positive sizes (at most {MAX_DIM:,}) are expected")
    spacing_key = "ElementSpacing" if "ElementSpacing" in fields else "ElementSize"
    if spacing_key not in fields:
        raise _FieldError("no ElementSpacing line (normalisation needs the voxel spacing)")
    spacing = _numbers(fields, spacing_key, 3, float, "three positive spacings")
    low, high = SPACING_RANGE_MM
    if not all(low <= v <= high for v in spacing):
        raise _FieldError(f"{spacing_key} = {fields[spacing_key]}: three positive spacings between {low:g} and "
                          f"{high:g} mm are expected (LUNA16 scans are 0.46-2.5 mm)")
    origin_key = "Offset" if fields.get("Offset") else "Origin" if fields.get("Origin") else None
    origin = _numbers(fields, origin_key, 3, float, "three coordinates (mm)") if origin_key else (0.0, 0.0, 0.0)
    direction_key = "TransformMatrix" if fields.get("TransformMatrix") else (
        "Orientation" if fields.get("Orientation") else None)
    direction = (_numbers(fields, direction_key, 9, float, "nine matrix entries") if direction_key
                 else (1., 0., 0., 0., 1., 0., 0., 0., 1.))
    compressed = _boolean(fields, "CompressedData", False)
    compressed_size = None
    if "CompressedDataSize" in fields:
        compressed_size = _numbers(fields, "CompressedDataSize", 1, int, "a size in bytes")[0]
        if compressed_size < 0:
            raise _FieldError(f"CompressedDataSize = {fields['CompressedDataSize']}, a size in bytes is expected")
    header_size = 0
    if fields.get("HeaderSize"):
        header_size = _numbers(fields, "HeaderSize", 1, int, "-1 or a size in bytes")[0]
        if header_size < -1:
            raise _FieldError(f"HeaderSize = {fields['HeaderSize']}, -1 or a size in bytes is expected")
    msb_key = "BinaryDataByteOrderMSB" if "BinaryDataByteOrderMSB" in fields else "ElementByteOrderMSB"
    msb = _boolean(fields, msb_key, False)
    _boolean(fields, "BinaryData", True)
    return {"size": size, "spacing": spacing, "origin": origin, "direction": direction, "compressed": compressed,
            "compressed_size": compressed_size, "header_size": header_size, "msb": msb}


def _check_data_file(header: MetaHeader, header_size: int = 0) -> None:
    data = header.data_file
    if not data.is_file():
        what = "is a folder" if data.is_dir() else "is missing"
        raise DataError(f"{header.path}: its data file {data} {what} (ElementDataFile = "
                        f"{header.fields['ElementDataFile']}); copy the {data.suffix} file next to the header")
    actual = data.stat().st_size
    if header.compressed:
        if actual == 0:
            raise DataError(f"{data}: empty (0 bytes) where the header {header.path.name} says CompressedData = True; "
                            "the file is truncated - replace it with the original")
        if header.compressed_size is not None and actual != header.compressed_size:
            raise DataError(f"{data}: {actual:,} bytes where the header {header.path.name} says CompressedDataSize "
                            f"= {header.compressed_size:,}; the file is truncated or from another image - "
                            "replace it with the original")
        return
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
            self._tmp_dirs[final_dir] = staging_dir(final_dir, STAGING_PREFIX)
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


def remove_stale_staged(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging folders a killed run of :class:`StagedOutputs` left in ``folder`` (see
    :func:`vnet_accept.io_utils.remove_stale_staging`); call it before writing into ``folder`` again."""
    return remove_stale_staging(folder, STAGING_PREFIX)


def remove_metaimage(path: str | os.PathLike[str]) -> None:
    """Delete a ``.mhd`` header and its data file if present (used before re-writing a failed scan's outputs)."""
    path = Path(path)
    with contextlib.suppress(DataError, OSError):
        data = parse_header(path).data_file
        data.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
