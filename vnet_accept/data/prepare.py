"""Network inputs from normalised volumes: ``<i>.bin`` tiles, the port's info file, and a manifest (SPEC §4.3).

``preprocess_dataset`` reads each selected scan's normalised CT and mask ``(128, 160, 160)``, cuts both into the
8 tiles of :mod:`vnet_accept.data.tiles`, skips a tile whose mask crop has no foreground, scales the CT crop
with :func:`~vnet_accept.data.tiles.ct_to_input` and writes it as ``<i>.bin`` - raw little-endian float32,
``(64, 80, 80)`` C order, 1,638,400 bytes, no header - with ``i`` running over (UID order × tile order).

Alongside, in the output folder:

* ``manifest.json`` - **the** map from a file to what it holds. Later stages key every tile by (UID, tile
  index), never by file position::

      manifest = load_manifest("prep_bin")             # DataError if missing, damaged or incomplete
      entry = manifest.entry(uid, 3)                   # ManifestEntry: index, file, uid, tile, bounds, sha256, …
      entry = manifest.entry_for_stem("17")            # output "17_1.bin" of the legacy tool → stem "17"
      x = manifest.read_input(entry)                   # (64, 80, 80) float32, checked against its sha256
      manifest.uids, manifest.skipped, manifest.failures, manifest.complete, manifest.data  # the rest

  It also holds the UID count used and its source, every skipped tile with its reason, every failed scan,
  the input scaling constants and the normalised files each scan came from (with checksums).
* the info file of the port's ``gen_dataset_info.py`` (default ``vnet_<output folder name>.info`` beside the
  output folder, so ``-o prep_bin`` gives the port's ``vnet_prep_bin.info``): ``<index> <path> 80 80`` per
  file, index = ``i`` of the file it names (the port used glob order). A path with whitespace cannot be an
  info file's line: refused before any work.

The output folder is built as a hidden sibling and swapped in at the end, so a previous output is replaced as a
whole and an interrupted run leaves the old one untouched (never a mix of two runs' tiles, which the inference
tools would all pick up). A folder that is not an earlier preprocess output is never overwritten. A scan that
fails (unreadable, wrong shape, mask not 0/1) writes no tile and is listed in ``failures``; the manifest is
then marked incomplete and :func:`load_manifest` refuses it unless asked to accept it.

Ground truth for post-processing: :func:`load_normalized_mask` (``(128, 160, 160)`` bool by UID; a tile's
``(64, 80, 80)`` crop is :meth:`Tile.crop <vnet_accept.data.tiles.Tile.crop>`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept import __version__
from vnet_accept.data.discovery import Layout, ScanFiles, discover
from vnet_accept.data.mhd import CT_TYPES, MASK_TYPES, parse_header, read_metaimage
from vnet_accept.data.parallel import ScanFailure, describe_exception
from vnet_accept.data.provenance import check_normalized_source
from vnet_accept.data.tiles import (
    HU_CLIP,
    INPUT_SCALE,
    INPUT_SHIFT,
    INPUT_TILE_BYTES,
    TILE_SHAPE,
    VOLUME_SHAPE,
    Tile,
    all_tiles,
    ct_to_input,
)
from vnet_accept.data.uids import UidList
from vnet_accept.errors import DataError
from vnet_accept.io_utils import (
    atomic_write_json,
    atomic_write_text,
    ensure_dir,
    relax_mode,
    remove_stale_staging,
    sha256_bytes,
    sha256_file,
    staging_dir,
)

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
#: The default info file is ``vnet_<output folder name>.info`` beside the output folder (``-o prep_bin`` gives the
#: port's ``vnet_prep_bin.info``), so two outputs under one parent never share (and overwrite) one info file.
DEFAULT_INFO_PATTERN = "vnet_{name}.info"
#: The info file's width and height columns (the port's ``gen_dataset_info.py … 80 80``).
INFO_WIDTH, INFO_HEIGHT = TILE_SHAPE[2], TILE_SHAPE[1]
INPUT_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class ManifestEntry:
    """One ``<i>.bin``: its running ``index``, file name, (``uid``, ``tile``) key, half-open ``bounds`` in the
    normalised volume ((z0, z1), (y0, y1), (x0, x1)), sha256 and the tile mask's foreground voxel count."""

    index: int
    file: str
    uid: str
    tile: int
    bounds: tuple[tuple[int, int], ...]
    sha256: str
    foreground_voxels: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.uid, self.tile)

    @property
    def stem(self) -> str:
        return Path(self.file).stem


@dataclass(frozen=True)
class SkippedTile:
    uid: str
    tile: int
    reason: str


@dataclass(frozen=True)
class Manifest:
    """A loaded ``manifest.json`` (see the module docstring); ``data`` is the whole JSON document."""

    directory: Path
    entries: tuple[ManifestEntry, ...]
    uids: tuple[str, ...]
    skipped: tuple[SkippedTile, ...]
    failures: tuple[ScanFailure, ...]
    complete: bool
    data: dict[str, Any] = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {e.key: e for e in self.entries})
        object.__setattr__(self, "_by_stem", {e.stem: e for e in self.entries})

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def by_key(self) -> dict[tuple[str, int], ManifestEntry]:
        return self._by_key  # type: ignore[attr-defined]

    def entry(self, uid: str, tile: int) -> ManifestEntry:
        try:
            return self.by_key[(uid, tile)]
        except KeyError:
            why = next((s.reason for s in self.skipped if (s.uid, s.tile) == (uid, tile)), "not in the manifest")
            raise DataError(f"{self.directory / MANIFEST_FILE}: no input for scan {uid} tile {tile} ({why})") from None

    def entry_for_stem(self, stem: str) -> ManifestEntry:
        """The entry whose file is ``<stem>.bin`` (inference tools name outputs ``<stem>_<k>.bin``)."""
        try:
            return self._by_stem[stem]  # type: ignore[attr-defined]
        except KeyError:
            raise DataError(f"{self.directory / MANIFEST_FILE} lists no input file {stem}.bin; the output does "
                            "not belong to this preprocessed dataset") from None

    def bin_path(self, entry: ManifestEntry) -> Path:
        return self.directory / entry.file

    def read_input(self, entry: ManifestEntry, verify: bool = True) -> np.ndarray:
        """The tile's network input ``(64, 80, 80)`` float32 (checked against the manifest's sha256)."""
        path = self.bin_path(entry)
        data = _read_exact(path, INPUT_TILE_BYTES)
        if verify and sha256_bytes(data) != entry.sha256:
            raise DataError(f"{path}: content differs from the manifest's sha256 (changed since preprocessing); "
                            "rerun `vnet-accept preprocess`")
        return np.frombuffer(data, dtype=INPUT_DTYPE).reshape(TILE_SHAPE).astype(np.float32)

    def verify(self) -> list[str]:
        """Problems with the folder: a listed file missing or changed, or a stray ``.bin`` not in the manifest."""
        problems = []
        listed = {e.file for e in self.entries}
        for entry in self.entries:
            path = self.bin_path(entry)
            if not path.is_file():
                problems.append(f"{path} is missing")
            elif sha256_file(path) != entry.sha256:
                problems.append(f"{path} differs from its sha256 in the manifest")
        strays = [p for p in sorted(self.directory.glob("*.bin")) if p.name not in listed]
        problems += [f"{p} is not in the manifest" for p in strays]
        return problems


def load_manifest(directory: str | os.PathLike[str], allow_incomplete: bool = False) -> Manifest:
    """Load ``<directory>/manifest.json``. Raises :class:`DataError` if it is missing or damaged, or if the
    preprocessing that wrote it had failures (``complete`` false) and ``allow_incomplete`` is not set."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    try:
        data = json.loads(path.read_text())
        entries = tuple(ManifestEntry(**{**e, "bounds": tuple(tuple(b) for b in e["bounds"])})
                        for e in data["entries"])
        skipped = tuple(SkippedTile(**s) for s in data["skipped_tiles"])
        failures = tuple(ScanFailure(**f) for f in data["failures"])
        manifest = Manifest(directory, entries, tuple(data["uids"]), skipped, failures, bool(data["complete"]), data)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; {directory} is not the output of `vnet-accept preprocess`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is damaged ({type(exc).__name__}: {exc}); rerun `vnet-accept preprocess`") from None
    if data.get("manifest_version") != MANIFEST_VERSION:
        raise DataError(f"{path}: manifest_version {data.get('manifest_version')!r}, this vnet-accept reads "
                        f"{MANIFEST_VERSION}; rerun `vnet-accept preprocess`")
    if len(manifest.by_key) != len(entries) or len({e.file for e in entries}) != len(entries):
        raise DataError(f"{path}: two entries share a (uid, tile) key or a file; rerun `vnet-accept preprocess`")
    if not manifest.complete and not allow_incomplete:
        names = ", ".join(f.uid for f in failures[:3]) + (" …" if len(failures) > 3 else "")
        raise DataError(f"{path}: preprocessing failed for {len(failures)} of {data['uids_requested']} scans "
                        f"({names}); fix them (see the manifest's failures) and rerun, or pass a UID list "
                        "without them - results of an incomplete split are not comparable")
    return manifest


# --- normalised volumes (ground truth for post-processing) -----------------------------------------------------

def load_normalized_ct(root: str | os.PathLike[str], uid: str) -> np.ndarray:
    """The normalised CT of ``uid`` under dataset ``root``: ``(128, 160, 160)`` int16 HU."""
    return _read_volume(_normalized_files(root, uid).ct, CT_TYPES, "CT")


def load_normalized_mask(root: str | os.PathLike[str], uid: str) -> np.ndarray:
    """The normalised lung mask of ``uid`` under dataset ``root``: ``(128, 160, 160)`` bool (True = lung)."""
    return _read_mask(_normalized_files(root, uid).mask)


def _normalized_files(root: str | os.PathLike[str], uid: str) -> ScanFiles:
    layout = discover(root).require_normalized()
    scan = ScanFiles(uid, layout.cts.get(uid), layout.masks.get(uid))
    if scan.ct is None and scan.mask is None:
        raise DataError(f"scan {uid} is not in the {layout.describe()}")
    check_normalized_source(layout.root, uid)  # stale volumes of a since-rewritten raw scan are never used
    return scan


def _read_volume(path: Path | None, types: tuple[str, ...], what: str) -> np.ndarray:
    if path is None:
        raise DataError(f"the normalised {what} is missing (see the scan's partner file)")
    array = read_metaimage(path, types).array
    if array.shape != VOLUME_SHAPE:
        raise DataError(f"{path}: shape {array.shape} (z, y, x), a normalised volume is {VOLUME_SHAPE}; "
                        "normalise the raw scan with `vnet-accept normalize`")
    return array


def _read_mask(path: Path | None) -> np.ndarray:
    if path is None:
        raise DataError("the normalised mask is missing (see the scan's partner file)")
    return read_binary_mask(path)


def read_binary_mask(path: str | os.PathLike[str], verify_checksum: bool = True) -> np.ndarray:
    """Read a normalised mask ``.mhd`` as ``(128, 160, 160)`` bool; :class:`DataError` naming the file if it is
    damaged, its shape is not the normalised one or it holds values other than 0 and 1.

    ``verify_checksum`` checks a ``.zraw``'s Adler-32 (SimpleITK does not; about 4 ms a mask). Callers that
    check every tile's lung-voxel count against the one recorded when the tiles were cut may leave it off."""
    # A view of SimpleITK's buffer, kept alive by ``image``: the bool copy below is the only copy made.
    image = read_metaimage(path, MASK_TYPES, verify_checksum=verify_checksum, view=True)
    array, header = image.array, image.header
    if array.shape != VOLUME_SHAPE:
        raise DataError(f"{header.path}: shape {array.shape} (z, y, x), a normalised mask is {VOLUME_SHAPE}; "
                        "normalise the raw mask with `vnet-accept normalize`")
    low, high = array.min(), array.max()  # two SIMD passes, far cheaper than np.unique
    if low < 0 or high > 1:
        values = np.unique(array)[:8].tolist()
        raise DataError(f"{header.path}: mask values {values}, a normalised mask holds only 0 and 1 (labels "
                        "3/4/5 mean it was not normalised); normalise it with `vnet-accept normalize`")
    return array.astype(bool)


# --- writing -----------------------------------------------------------------------------------------------------

def tile_inputs(ct: np.ndarray, mask: np.ndarray) -> tuple[list[tuple[Tile, np.ndarray, int]], list[Tile]]:
    """Cut ``ct`` ``(128, 160, 160)`` HU and ``mask`` (same shape, bool) into tiles: ``(tile, input (64, 80, 80)
    float32, foreground voxels)`` for kept tiles and the list of tiles skipped for an empty mask."""
    if ct.shape != VOLUME_SHAPE or mask.shape != VOLUME_SHAPE:
        raise DataError(f"CT {ct.shape} and mask {mask.shape} must both be {VOLUME_SHAPE} (z, y, x)")
    kept, skipped = [], []
    for tile in all_tiles():
        foreground = int(np.count_nonzero(tile.crop(mask)))
        if foreground:
            kept.append((tile, ct_to_input(tile.crop(ct)), foreground))
        else:
            skipped.append(tile)
    return kept, skipped


def write_input_bin(path: str | os.PathLike[str], tile_input: np.ndarray) -> bytes:
    """Write ``(64, 80, 80)`` float32 as raw little-endian bytes (not atomic: callers write into a staging
    folder). Returns the bytes written."""
    if tile_input.shape != TILE_SHAPE:
        raise ValueError(f"a tile input is {TILE_SHAPE}, got {tile_input.shape}")
    data = np.ascontiguousarray(tile_input, dtype=INPUT_DTYPE).tobytes()
    with open(path, "wb") as fh:
        fh.write(data)
    return data


def read_input_bin(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``.bin`` network input as ``(64, 80, 80)`` float32 (size checked; no checksum - see the manifest)."""
    return np.frombuffer(_read_exact(Path(path), INPUT_TILE_BYTES), dtype=INPUT_DTYPE).reshape(TILE_SHAPE).copy()


def _read_exact(path: Path, size: int) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) != size:
        raise DataError(f"{path}: {len(data):,} bytes, a float32 {TILE_SHAPE} tile is {size:,}; the file is "
                        "truncated or not a network input")
    return data


@dataclass(frozen=True)
class InfoLine:
    index: int
    path: str
    width: int
    height: int


def check_info_path_text(path: str, info_path: str | os.PathLike[str] | None = None) -> None:
    """:class:`DataError` if ``path`` cannot be a line of an info file (it holds whitespace): the port's parser and
    the legacy benchmark tool split lines on whitespace, so such a line would be read as another file."""
    if any(c.isspace() for c in str(path)):
        target = f"the info file {info_path}" if info_path is not None else "an info file"
        raise DataError(f"input path {str(path)!r} contains whitespace, which {target} cannot hold (the inference "
                        "tools split its lines on spaces); move the tiles to a path without spaces (or run from a "
                        "folder whose relative path to them has none)")


def format_info(lines: list[InfoLine], info_path: str | os.PathLike[str] | None = None) -> str:
    """The info file's text. A path with whitespace cannot be written (:func:`check_info_path_text`)."""
    for line in lines:
        check_info_path_text(line.path, info_path)
    return "".join(f"{x.index} {x.path} {x.width} {x.height}\n" for x in lines)


def write_info_file(paths: list[Any], info_path: str | os.PathLike[str], width: int = TILE_SHAPE[2],
                    height: int = TILE_SHAPE[1]) -> Path:
    """``<index> <path> <width> <height>`` per line, in the order given (gen_dataset_info.py's format, SPEC §4.3),
    written atomically. Every info file this package writes goes through :func:`format_info`."""
    info_path = Path(info_path)
    lines = [InfoLine(i, str(p), width, height) for i, p in enumerate(paths)]
    return atomic_write_text(info_path, format_info(lines, info_path))


def default_info_path(out_dir: str | os.PathLike[str]) -> Path:
    """``vnet_<name>.info`` beside the output folder ``out_dir`` (see :data:`DEFAULT_INFO_PATTERN`)."""
    out_dir = Path(out_dir)
    return out_dir.parent / DEFAULT_INFO_PATTERN.format(name=Path(os.path.abspath(out_dir)).name)


def parse_info(text: str, source: str = "<info>") -> list[InfoLine]:
    """Parse an info file (``<index> <path> <width> <height>`` lines; blank lines and CRLF tolerated)."""
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4 or not (parts[0].isdigit() and parts[2].isdigit() and parts[3].isdigit()):
            raise DataError(f"{source}, line {lineno}: {line.strip()[:80]!r} is not '<index> <path> <width> "
                            "<height>'")
        out.append(InfoLine(int(parts[0]), parts[1], int(parts[2]), int(parts[3])))
    return out


def preprocess_dataset(layout: Layout, uids: UidList, out_dir: str | os.PathLike[str],
                       info_path: str | os.PathLike[str] | None = None, info_dir_text: str | None = None,
                       progress: Callable[[str, bool], None] | None = None) -> Manifest:
    """Write the tiles of the scans ``uids`` of a normalised ``layout`` into ``out_dir`` (replaced as a whole).

    ``info_path`` defaults to ``vnet_<name of out_dir>.info`` beside ``out_dir`` (:func:`default_info_path`);
    its lines name files as ``<info_dir_text>/<i>.bin`` (default: ``out_dir`` as given). Returns the manifest,
    complete or not; the caller reports ``manifest.failures``. Staging folders a killed run left beside
    ``out_dir`` are removed first; the output folder gets the mode ``mkdir`` would give it (the umask applies).
    """
    if layout.kind != "normalized":
        raise ValueError("preprocess_dataset needs the normalised layout")
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    info_path = Path(info_path) if info_path is not None else default_info_path(out_dir)
    if info_path.is_dir():
        raise DataError(f"info file {info_path} is a folder; pass --info with a file name")
    info_dir_text = info_dir_text if info_dir_text is not None else str(out_dir)
    check_info_path_text(f"{info_dir_text.rstrip('/')}/0.bin", info_path)  # before any work, not after it
    scans = layout.select(uids)
    ensure_dir(out_dir.parent)
    remove_stale_outputs(out_dir)
    staging = staging_dir(out_dir.parent, f".{out_dir.name}{STAGING_INFIX}")
    try:
        entries: list[ManifestEntry] = []
        skipped: list[SkippedTile] = []
        failures: list[ScanFailure] = []
        scan_facts: list[dict[str, Any]] = []
        for scan in scans:
            ok = False
            try:
                written, empty, facts = _prepare_scan(scan, layout, staging, len(entries))
            except Exception as exc:  # noqa: BLE001 - reported per scan, the others go on
                failures.append(ScanFailure(scan.uid, describe_exception(exc)))
            else:
                ok = True
                entries += written
                skipped += [SkippedTile(scan.uid, t.index, "mask crop has no foreground") for t in empty]
                scan_facts.append(facts)
            if progress is not None:
                progress(scan.uid, ok)
        data = _manifest_data(layout, uids, entries, skipped, failures, scan_facts, info_path)
        atomic_write_json(staging / MANIFEST_FILE, data)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    lines = [InfoLine(e.index, f"{info_dir_text.rstrip('/')}/{e.file}", INFO_WIDTH, INFO_HEIGHT) for e in entries]
    atomic_write_text(info_path, format_info(lines, info_path))
    return load_manifest(out_dir, allow_incomplete=True)


def _prepare_scan(scan: ScanFiles, layout: Layout, out_dir: Path,
                  first_index: int) -> tuple[list[ManifestEntry], list[Tile], dict[str, Any]]:
    problem = scan.problem(layout)
    if problem:
        raise DataError(problem)
    check_normalized_source(layout.root, scan.uid)  # never cut tiles from volumes of a since-rewritten raw scan
    ct = _read_volume(scan.ct, CT_TYPES, "CT")
    mask = _read_mask(scan.mask)
    entries, empty = write_scan_tiles(scan.uid, ct, mask, out_dir, first_index)
    facts = {"uid": scan.uid, "ct": str(scan.ct), "mask": str(scan.mask),
             "ct_data_sha256": sha256_file(parse_header(scan.ct).data_file),
             "mask_data_sha256": sha256_file(parse_header(scan.mask).data_file),
             "tiles_written": [e.tile for e in entries], "tiles_skipped": [t.index for t in empty]}
    return entries, empty, facts


def write_scan_tiles(uid: str, ct: np.ndarray, mask: np.ndarray, out_dir: str | os.PathLike[str],
                     first_index: int) -> tuple[list[ManifestEntry], list[Tile]]:
    """Write the non-empty tiles of one scan (``ct`` HU and ``mask`` bool, both ``(128, 160, 160)``) as
    ``<first_index + n>.bin`` into ``out_dir``; returns their manifest entries and the skipped tiles. If a write
    fails, the scan's files already written are removed before the error propagates."""
    out_dir = Path(out_dir)
    kept, empty = tile_inputs(ct, mask)
    entries, written = [], []
    try:
        for offset, (tile, tile_input, foreground) in enumerate(kept):
            path = out_dir / f"{first_index + offset}.bin"
            written.append(path)
            data = write_input_bin(path, tile_input)
            entries.append(ManifestEntry(first_index + offset, path.name, uid, tile.index, tile.bounds,
                                         sha256_bytes(data), foreground))
    except BaseException:
        for path in written:  # none of a failed scan's tiles stays
            path.unlink(missing_ok=True)
        raise
    return entries, empty


def _manifest_data(layout: Layout, uids: UidList, entries: list[ManifestEntry], skipped: list[SkippedTile],
                   failures: list[ScanFailure], scans: list[dict[str, Any]], info_path: Path) -> dict[str, Any]:
    used = [s["uid"] for s in scans]
    return {
        "manifest_version": MANIFEST_VERSION,
        "created_by": f"vnet-accept {__version__}",
        "complete": not failures,
        "dataset_root": str(layout.root),
        "uid_source": uids.source,
        "uids_requested": len(uids),
        "scans_used": len(used),
        "uids": used,
        "tiles_written": len(entries),
        "volume_shape_zyx": VOLUME_SHAPE,
        "tile_shape_zyx": TILE_SHAPE,
        "file_format": {"dtype": "float32", "byte_order": "little", "order": "C, (z, y, x)",
                        "bytes": INPUT_TILE_BYTES, "header": None},
        "input_scaling": {"formula": "(clip(HU, lo, hi) + shift) / scale", "hu_clip": HU_CLIP,
                          "shift": INPUT_SHIFT, "scale": INPUT_SCALE},
        "info_file": {"path": str(info_path), "width": INFO_WIDTH, "height": INFO_HEIGHT},
        "entries": [asdict(e) for e in entries],
        "skipped_tiles": [asdict(s) for s in skipped],
        "failures": [asdict(f) for f in failures],
        "scans": scans,
    }


def _check_replaceable(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"output {out_dir} exists and is not a folder; choose another -o")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST_FILE).is_file():
        raise DataError(f"output folder {out_dir} is not empty and holds no {MANIFEST_FILE} (not an earlier "
                        "`vnet-accept preprocess` output); it is left alone - choose an empty or new folder")


#: The staging folder of ``-o NAME`` is ``.NAME.staging-<host>-<pid>-<random>.tmp`` beside it; the previous
#: output is moved aside to ``.NAME.old-<host>-<pid>-<random>.tmp`` during the swap.
STAGING_INFIX = ".staging-"
ASIDE_INFIX = ".old-"


def remove_stale_outputs(out_dir: Path) -> list[Path]:
    """Remove what killed runs into ``out_dir`` left beside it: staging folders of dead processes, and a previous
    output moved aside by a swap that finished (``out_dir`` exists). Returns what was removed."""
    parent, name = out_dir.parent, out_dir.name
    removed = remove_stale_staging(parent, f".{name}{STAGING_INFIX}")
    removed += remove_stale_staging(parent, f".{name}.")  # unnamed ones of older versions (an hour old)
    if out_dir.is_dir():
        removed += remove_stale_staging(parent, f".{name}{ASIDE_INFIX}")
    return removed


def _swap_in(staging: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = staging_dir(out_dir.parent, f".{out_dir.name}{ASIDE_INFIX}")
        os.replace(out_dir, old / out_dir.name)
    relax_mode(staging)  # mkdtemp's 0700 would hide the tiles from another user (e.g. the one running ais_bench)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
