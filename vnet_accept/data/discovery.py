"""Finding LUNA16 scans under a dataset root, in either layout of SPEC §4.1.

Layouts (both may exist under one root; the port normalises into the root it reads from):

* **raw**: CT scans ``lung_ct_image/<uid>.mhd`` (the port's merged folder) or the original ``subset0/`` …
  ``subset9/`` folders (``subset<N>/<uid>.mhd``, any mix), and masks ``seg-lungs-LUNA16/<uid>.mhd``;
* **normalised**: ``normalized_lung_ct/<uid>.mhd`` and ``normalized_lung_mask/<uid>.mhd``, plus the optional
  per-scan records ``normalized_lung_ct/<uid>.json`` that :mod:`vnet_accept.data.normalize` writes.

A scan is keyed by its series UID = the ``.mhd`` file's stem. Documented behaviour:

* a root with neither layout, or a layout with its CT folder but not its mask folder (or the reverse), is a
  :class:`DataError` naming the folders expected;
* the same UID in two CT folders (say ``lung_ct_image/`` and ``subset3/``) is a :class:`DataError` naming both;
* selecting UIDs (:meth:`Layout.select`) that the layout has neither a CT nor a mask for is a
  :class:`DataError` naming them; a UID with only one of the two is returned with the other ``None`` - the
  caller reports it as that scan's failure (``"no mask for CT …"``) and goes on with the others;
* without a UID list every UID found is selected, paired or not, so an unpaired file is reported, not skipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vnet_accept.data.uids import UidList, require_present
from vnet_accept.errors import DataError

RAW_CT_DIR = "lung_ct_image"
RAW_MASK_DIR = "seg-lungs-LUNA16"
NORMALIZED_CT_DIR = "normalized_lung_ct"
NORMALIZED_MASK_DIR = "normalized_lung_mask"
SUBSET_PATTERN = re.compile(r"^subset\d+$")


@dataclass(frozen=True)
class ScanFiles:
    """The headers of one scan; ``ct`` or ``mask`` is ``None`` when that file is missing (a per-scan failure)."""

    uid: str
    ct: Path | None
    mask: Path | None

    def problem(self, layout: Layout) -> str | None:
        """Why this scan cannot be processed (a missing partner), naming the file present and the one absent."""
        if self.ct is None and self.mask is not None:
            return f"mask {self.mask} has no CT: expected {layout.ct_hint(self.uid)}"
        if self.mask is None and self.ct is not None:
            return f"CT {self.ct} has no mask: expected {layout.mask_dir / (self.uid + '.mhd')}"
        return None


@dataclass(frozen=True)
class Layout:
    """One layout found under a root: ``kind`` is ``"raw"`` or ``"normalized"``; CT and mask headers by UID."""

    kind: str
    root: Path
    ct_dirs: tuple[Path, ...]
    mask_dir: Path
    cts: dict[str, Path]
    masks: dict[str, Path]

    @property
    def uids(self) -> list[str]:
        """Every UID with a CT or a mask, sorted."""
        return sorted(set(self.cts) | set(self.masks))

    def describe(self) -> str:
        folders = ", ".join(d.name + "/" for d in (*self.ct_dirs, self.mask_dir))
        return f"{self.kind} layout under {self.root} ({folders})"

    def ct_hint(self, uid: str) -> str:
        return " or ".join(str(d / f"{uid}.mhd") for d in self.ct_dirs) if self.ct_dirs else f"{uid}.mhd"

    def select(self, uids: UidList | None = None) -> list[ScanFiles]:
        """The scans to process, in UID-list order (or sorted when ``uids`` is None); see the module docstring."""
        wanted = list(uids.uids) if uids is not None else self.uids
        if uids is not None:
            require_present(uids, self.uids, f"the {self.describe()}")
        return [ScanFiles(uid, self.cts.get(uid), self.masks.get(uid)) for uid in wanted]


@dataclass(frozen=True)
class Dataset:
    """What :func:`discover` found under ``root``: the raw and/or the normalised layout."""

    root: Path
    raw: Layout | None
    normalized: Layout | None

    def require_raw(self) -> Layout:
        if self.raw is None:
            extra = (f" It has the normalised layout ({NORMALIZED_CT_DIR}/): the scans are already normalised; "
                     "run `vnet-accept preprocess` on it." if self.normalized else "")
            raise DataError(f"{self.root} has no raw LUNA16 layout: expected {RAW_CT_DIR}/ (or subset0/ … "
                            f"subset9/) with <uid>.mhd/.raw CT scans and {RAW_MASK_DIR}/ with <uid>.mhd/.zraw "
                            f"masks.{extra}")
        return self.raw

    def require_normalized(self) -> Layout:
        if self.normalized is None:
            extra = (" It has the raw layout: run `vnet-accept normalize --luna16 "
                     f"{self.root}` first." if self.raw else "")
            raise DataError(f"{self.root} has no normalised LUNA16 layout: expected {NORMALIZED_CT_DIR}/ and "
                            f"{NORMALIZED_MASK_DIR}/ with <uid>.mhd files.{extra}")
        return self.normalized


def discover(root: str | os.PathLike[str]) -> Dataset:
    """Find both layouts under ``root`` (see the module docstring). Raises :class:`DataError` if neither is there."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"LUNA16 root {root} does not exist or is not a folder; pass --luna16 DIR (or "
                        "--luna16-root) pointing at the folder that holds lung_ct_image/ and seg-lungs-LUNA16/, "
                        "or create a synthetic one with `vnet-accept synth -o DIR`")
    raw_ct_dirs = tuple(d for d in [root / RAW_CT_DIR, *sorted(_subset_dirs(root), key=_subset_number)]
                        if d.is_dir())
    raw = _layout("raw", root, raw_ct_dirs, root / RAW_MASK_DIR,
                  f"{RAW_CT_DIR}/ (or subset0/ … subset9/)")
    normalized_ct = root / NORMALIZED_CT_DIR
    normalized = _layout("normalized", root, (normalized_ct,) if normalized_ct.is_dir() else (),
                         root / NORMALIZED_MASK_DIR, f"{NORMALIZED_CT_DIR}/")
    if raw is None and normalized is None:
        raise DataError(f"{root} holds no LUNA16 dataset: expected {RAW_CT_DIR}/ (or subset0/ … subset9/) plus "
                        f"{RAW_MASK_DIR}/, or {NORMALIZED_CT_DIR}/ plus {NORMALIZED_MASK_DIR}/")
    return Dataset(root, raw, normalized)


def _subset_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if SUBSET_PATTERN.match(p.name) and p.is_dir()]


def _subset_number(path: Path) -> int:
    return int(path.name[len("subset"):])


def _layout(kind: str, root: Path, ct_dirs: tuple[Path, ...], mask_dir: Path, ct_name: str) -> Layout | None:
    if not ct_dirs and not mask_dir.is_dir():
        return None
    if not ct_dirs:
        raise DataError(f"{root} has {mask_dir.name}/ but no CT folder {ct_name}; the {kind} layout needs both")
    if not mask_dir.is_dir():
        raise DataError(f"{root} has {', '.join(d.name + '/' for d in ct_dirs)} but no mask folder "
                        f"{mask_dir.name}/; the {kind} layout needs both")
    cts: dict[str, Path] = {}
    for directory in ct_dirs:
        for uid, path in _headers(directory).items():
            if uid in cts:
                raise DataError(f"scan {uid} is present twice: {cts[uid]} and {path}; keep one of them")
            cts[uid] = path
    return Layout(kind, root, ct_dirs, mask_dir, cts, _headers(mask_dir))


def _headers(directory: Path) -> dict[str, Path]:
    """``<uid>.mhd`` files of a folder by stem; hidden files (our staging folders, editors' backups) ignored."""
    return {p.stem: p for p in sorted(directory.iterdir())
            if p.suffix.lower() == ".mhd" and not p.name.startswith(".") and p.is_file()}
