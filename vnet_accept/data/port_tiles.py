"""The port's network inputs as its own scripts write them (SPEC §4.3): ``prep_bin/<i>.bin`` from
``vnet_preprocess.py`` - no manifest, ``i`` running over (UID order × tile order) with tiles of an empty mask skipped -
and the info file of ``gen_dataset_info.py`` (``<index> <path> <width> <height>``, files in glob order).

Without a manifest, which tile a file holds is known only by rebuilding the port's numbering from the masks (as
:mod:`vnet_accept.results.postprocess` does for results without one). The port reads its UID file dropping a last
line without a newline (:func:`~vnet_accept.data.consistency.port_style_uid_lines`), so two numberings are
candidates: the split read robustly, and the split read the port's way. The one whose tile count equals the number of
``.bin`` files is the one the port used; when that is the port's reading, the scan it lost is named by the coverage
check. :func:`port_tiles` returns a :class:`~vnet_accept.data.prepare.Manifest` built from that numbering, so the
gate's input consistency check (:func:`~vnet_accept.data.consistency.check_inputs`) judges each file by its
(UID, tile).

The info file's order matters: the legacy tool batches consecutive lines, so under batch statistics an info file
listed in glob order (``0, 1, 10, 100, …``) puts other tiles together than the file numbers suggest.
:func:`check_info_order` says where the order departs from the numbers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnet_accept.data.prepare import Manifest, ManifestEntry, load_normalized_mask, parse_info
from vnet_accept.data.tiles import TILES_PER_VOLUME, Tile
from vnet_accept.errors import DataError

_BIN = re.compile(r"^(\d+)\.bin$")
_MAX_NAMED = 5


def bin_files(directory: str | os.PathLike[str]) -> list[str]:
    """The ``<i>.bin`` names in ``directory``, by number; :class:`DataError` when there are none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder of <i>.bin inputs; pass the port's prep_bin/ folder")
    names = sorted((p.name for p in directory.iterdir() if _BIN.match(p.name)), key=lambda n: int(_BIN.match(n)[1]))
    if not names:
        raise DataError(f"{directory} holds no <i>.bin files (the port's vnet_preprocess.py writes 0.bin, 1.bin, …); "
                        "pass the prep_bin/ folder it wrote")
    return names


def port_numbering(uids: list[str] | tuple[str, ...], dataset_root: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """``[(uid, tile), …]`` in the port's file order: every tile whose mask crop has lung, UID by UID."""
    numbering = []
    for uid in uids:
        mask = load_normalized_mask(dataset_root, uid)
        numbering += [(uid, k) for k in range(TILES_PER_VOLUME) if Tile(k).crop(mask).any()]
    return numbering


@dataclass(frozen=True)
class PortTiles:
    """The port's ``prep_bin`` mapped to tiles: ``manifest`` (entries by the chosen numbering, ``sha256`` empty: the
    port writes none), ``reading`` (``robust`` or ``port``: which reading of the UID file gave that numbering),
    ``extra`` (files beyond it), ``note`` (how the numbering was chosen)."""

    manifest: Manifest
    reading: str
    files: tuple[str, ...]
    extra: tuple[str, ...]
    note: str

    @property
    def uids(self) -> tuple[str, ...]:
        return self.manifest.uids

    def describe(self) -> str:
        return f"the port's tiles in {self.manifest.directory} ({len(self.files)} files; {self.note})"


def port_tiles(directory: str | os.PathLike[str], split: Any, dataset_root: str | os.PathLike[str],
               uid_file: str | os.PathLike[str] | None = None) -> PortTiles:
    """Map the port's ``<i>.bin`` files in ``directory`` to (UID, tile) (see the module docstring). ``split`` is the
    test split read robustly (a :class:`~vnet_accept.data.uids.UidList`); ``uid_file`` its file, if it is one."""
    from vnet_accept.data.consistency import port_style_uid_lines

    directory = Path(directory)
    files = bin_files(directory)
    robust = port_numbering(list(split.uids), dataset_root)
    candidates = [("robust", tuple(split.uids), robust)]
    if uid_file is not None and Path(uid_file).is_file():
        port_uids = tuple(port_style_uid_lines(Path(uid_file).read_text(encoding="utf-8-sig", errors="replace")))
        if port_uids != tuple(split.uids) and set(port_uids) <= set(split.uids):
            kept = set(port_uids)
            candidates.append(("port", port_uids, [t for t in robust if t[0] in kept]))
    chosen = next((c for c in candidates if len(c[2]) == len(files)), candidates[0])
    reading, uids, numbering = chosen
    if len(numbering) == len(files):
        note = (f"{len(files)} files = the tiles of {len(uids)} UIDs" +
                (" read the port's way (a last line without a newline dropped)" if reading == "port" else ""))
    else:
        note = (f"{len(files)} files, but the port's numbering of {len(uids)} UIDs has {len(numbering)} tiles: "
                "judged by that numbering")
    entries = []
    for i, (uid, k) in enumerate(numbering):
        tile = Tile(k)
        entries.append(ManifestEntry(i, f"{i}.bin", uid, k, tile.bounds, "", -1))
    present = set(files)
    extra = tuple(name for name in files if int(_BIN.match(name)[1]) >= len(numbering))
    manifest = Manifest(directory, tuple(entries), tuple(uids), (), (), True,
                        {"dataset_root": str(dataset_root), "uid_source": f"{len(uids)} UIDs ({reading} reading)",
                         "index_source": "the port's numbering rebuilt from the masks (i over UID order x tile order, "
                                         "empty tiles skipped)",
                         "missing_files": [e.file for e in entries if e.file not in present]})
    return PortTiles(manifest, reading, tuple(files), extra, note)


@dataclass
class InfoOrder:
    """The info file against the ``<i>.bin`` files: lines whose path is not file ``index`` (the tool batches by line,
    so under batch statistics they change which tiles share a batch), files not listed, lines naming no file."""

    path: str
    lines: int
    files: int
    out_of_order: list[tuple[int, str]] = field(default_factory=list)  # (line index, file it names)
    unlisted: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def in_order(self) -> bool:
        return not self.out_of_order

    @property
    def complete(self) -> bool:
        return not (self.unlisted or self.unknown or self.duplicates)

    def describe(self) -> str:
        parts = []
        if self.out_of_order:
            shown = ", ".join(f"line {i} -> {name}" for i, name in self.out_of_order[:_MAX_NAMED])
            parts.append(f"{len(self.out_of_order)} of {self.lines} lines name another file than their index ({shown}"
                         f"{', …' if len(self.out_of_order) > _MAX_NAMED else ''})")
        for what, items in (("files not listed", self.unlisted), ("lines naming no file in the folder", self.unknown),
                            ("files listed twice", self.duplicates)):
            if items:
                parts.append(f"{len(items)} {what} ({', '.join(items[:_MAX_NAMED])}"
                             f"{', …' if len(items) > _MAX_NAMED else ''})")
        return "; ".join(parts) or f"all {self.lines} lines in file-number order, every file listed once"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "lines": self.lines, "files": self.files, "in_order": self.in_order,
                "complete": self.complete, "out_of_order": [list(x) for x in self.out_of_order[:50]],
                "unlisted": self.unlisted[:50], "unknown": self.unknown[:50], "duplicates": self.duplicates[:50]}


def check_info_order(info_path: str | os.PathLike[str], files: list[str] | tuple[str, ...]) -> InfoOrder:
    """Compare the info file at ``info_path`` with the ``<i>.bin`` names ``files``; :class:`DataError` for a file
    that is not an info file."""
    info_path = Path(info_path)
    try:
        text = info_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the info file {info_path}: {exc}") from None
    lines = parse_info(text, str(info_path))
    result = InfoOrder(str(info_path), len(lines), len(files))
    names = set(files)
    seen: set[str] = set()
    for position, line in enumerate(lines):
        name = Path(line.path.replace("\\", "/")).name
        if name not in names:
            result.unknown.append(line.path)
            continue
        if name in seen:
            result.duplicates.append(name)
        seen.add(name)
        match = _BIN.match(name)
        if match is None or int(match[1]) != line.index or line.index != position:
            result.out_of_order.append((line.index, name))
    result.unlisted = [n for n in files if n not in seen]
    return result
