"""Result folders as the inference tools write them: naming, writing, finding and validating outputs (SPEC §5).

One output per tile, ``(64, 80, 80, 2)`` float32 log-probabilities (D, H, W, C), C order, named after the input
file's stem (``<stem>.bin`` → ``<stem>_<k>.<ext>``) - never matched by position. Three layouts:

* ``ais_bench``: ``<stem>_0.bin`` (output index **0-based**), raw little-endian float32, 3,276,800 bytes, no
  header; the files sit in ``--output``/``--output_dirname`` (``result/result_bs16/``), the run's
  ``<dirname>_summary.json`` beside that folder.
* ``benchmark`` (the legacy ``benchmark.x86_64``): ``dumpOutput_device<id>/<stem>_1.bin`` (output index
  **1-based**), same bytes; a run sharded over several chips leaves one ``dumpOutput_device<id>/`` per chip.
* ``npy``: ``<stem>_0.npy`` as ``ais_bench --outfmt NPY`` writes it; shape ``(64, 80, 80, 2)`` (or with a
  leading batch axis of 1), dtype float32.

:func:`locate_results` finds the outputs under a folder (the output folder itself, its parent, the legacy
tool's working directory or ``result/``) and states the layout and why; :func:`validate_outputs` checks every
file against the tiles expected and returns the problems, each of a documented kind (:data:`PROBLEM_KINDS`).
Nothing is skipped silently: files that are not outputs (summaries, logs) are listed as extras.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vnet_accept.data.tiles import OUTPUT_TILE_BYTES, TILE_SHAPE
from vnet_accept.errors import DataError
from vnet_accept.io_utils import atomic_output

#: Output index of the one model output in a file name ``<stem>_<index>``: ais_bench counts from 0, the legacy
#: benchmark tool from 1 (SPEC §5, §9).
AIS_BENCH_OUTPUT_INDEX = 0
LEGACY_OUTPUT_INDEX = 1
LAYOUTS = ("ais_bench", "benchmark", "npy")
LAYOUT_HELP = {
    "ais_bench": "<stem>_0.bin, 0-based output index, as ais_bench writes",
    "benchmark": "dumpOutput_device<id>/<stem>_1.bin, 1-based output index, as the legacy benchmark tool writes",
    "npy": "<stem>_0.npy, as ais_bench --outfmt NPY writes",
}
OUTPUT_INDEX = {"ais_bench": AIS_BENCH_OUTPUT_INDEX, "benchmark": LEGACY_OUTPUT_INDEX, "npy": AIS_BENCH_OUTPUT_INDEX}
EXTENSION = {"ais_bench": "bin", "benchmark": "bin", "npy": "npy"}
OUTPUT_SHAPE = (*TILE_SHAPE, 2)
OUTPUT_DTYPE = np.dtype("<f4")
OUTPUT_BYTES = OUTPUT_TILE_BYTES  # 3,276,800
DEVICE_DIR_RE = re.compile(r"^dumpOutput_device(?P<device>\d+)$")
OUTPUT_NAME_RE = re.compile(r"^(?P<stem>.+)_(?P<index>\d+)\.(?P<ext>bin|npy|txt)$")
#: The tools' own files that look like ``<stem>_<k>.txt`` (perf_vision_batchsize_16_device_0.txt, …).
_TOOL_FILE_PREFIXES = ("perf_", "PureInfer_", "pure_infer_")
#: What ``vnet-accept infer`` writes beside its outputs (one per shard): provenance, not an output.
RUN_RECORD_RE = re.compile(r"^vnet_accept_infer.*\.json$")
#: Every kind of problem a result folder can have, with what it means.
PROBLEM_KINDS = {
    "missing": "no output file for a tile the manifest lists",
    "truncated": "a .bin/.npy shorter than one float32 (64, 80, 80, 2) tile (3,276,800 bytes of data)",
    "oversized": "a .bin longer than one tile (several tiles in one file?)",
    "bad_npy": "a .npy that is not float32 (64, 80, 80, 2) in C order",
    "nonfinite": "an output holding NaN or Inf values",
    "unknown_tile": "an output whose input stem is not a tile of the manifest (another dataset or split?)",
    "output_index": "output index off by one: <stem>_1 where <stem>_0 was expected or the reverse",
    "duplicate": "two outputs for the same tile (e.g. in two dumpOutput_device folders)",
    "text_output": "text outputs (the legacy tool without -output_binary=True); rerun with binary output",
    "wrong_format": "a file of the other format (.npy among .bin outputs or the reverse)",
}
_MAX_NAMED = 8
#: What to do, said once per kind after the files are named.
KIND_HINTS = {
    "output_index": "outputs of the other tool? pass --layout ais_bench or --layout benchmark; else the run or a "
                    "renaming step is off by one",
    "unknown_tile": "judge against the tiles the run was made from (--prep, or --luna16/--uids)",
    "missing": "rerun the inference (vnet-accept infer resumes; ais_bench writes no output for a failed batch)",
}


# --- naming and writing --------------------------------------------------------------------------------------------

def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise DataError(f"unknown result layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return layout


def device_dir_name(device_id: int) -> str:
    """The legacy tool's per-chip output folder, ``dumpOutput_device<id>``."""
    return f"dumpOutput_device{device_id}"


def output_name(stem: str, index: int, ext: str = "bin") -> str:
    """The file a tool writes output ``index`` of input ``<stem>.bin`` to: ``<stem>_<index>.<ext>``."""
    return f"{stem}_{index}.{ext}"


def output_relpath(stem: str, layout: str, device_id: int = 0) -> Path:
    """Where ``layout`` puts the output of input ``<stem>.bin``, relative to the result folder."""
    name = output_name(stem, OUTPUT_INDEX[check_layout(layout)], EXTENSION[layout])
    return Path(device_dir_name(device_id)) / name if layout == "benchmark" else Path(name)


def write_output(root: str | os.PathLike[str], stem: str, output: np.ndarray, layout: str,
                 device_id: int = 0) -> Path:
    """Write one tile's output ``(64, 80, 80, 2)`` float32 in ``layout`` under ``root``, atomically (an
    interrupted write never leaves a file of the right name)."""
    if output.shape != OUTPUT_SHAPE:
        raise ValueError(f"an output tile is {OUTPUT_SHAPE} (D, H, W, 2), got {output.shape}")
    path = Path(root) / output_relpath(stem, layout, device_id)
    data = np.ascontiguousarray(output, dtype=OUTPUT_DTYPE)
    with atomic_output(path) as fh:
        if layout == "npy":
            np.lib.format.write_array(fh, data, allow_pickle=False)
        else:
            fh.write(data.tobytes())
    return path


def output_is_complete(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` exists and holds a whole output tile (the resume test of ``vnet-accept infer``)."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return _npy_problem(path) is None
        return path.stat().st_size == OUTPUT_BYTES
    except OSError:
        return False


def read_output(path: str | os.PathLike[str], out: np.ndarray | None = None) -> np.ndarray:
    """One validated output file -> ``(64, 80, 80, 2)`` float32. A ``.bin`` is read into ``out`` when given (a
    reused buffer of that shape and dtype: no allocation per tile)."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False).reshape(OUTPUT_SHAPE)
    if out is None:
        out = np.empty(OUTPUT_SHAPE, dtype=OUTPUT_DTYPE)
    elif out.shape != OUTPUT_SHAPE or out.dtype != OUTPUT_DTYPE or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 {OUTPUT_SHAPE} array")
    with open(path, "rb", buffering=0) as fh:
        size = fh.readinto(memoryview(out).cast("B"))
        if size != OUTPUT_BYTES or fh.read(1):
            raise DataError(f"{path}: not {OUTPUT_BYTES:,} bytes (changed while being read?); an output tile is "
                            f"{OUTPUT_BYTES:,}")
    return out


def map_output(path: str | os.PathLike[str]) -> np.ndarray:
    """One validated output file as a read-only ``(64, 80, 80, 2)`` float32 array mapped from the file (no copy:
    the post-processor reads each output once). The size is checked on the open file first; the mapping is
    released when the array is dropped. Files are written whole (atomically by ``vnet-accept infer``); one being
    rewritten *in place* while mapped would be a problem, so judge finished runs."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, mmap_mode="r", allow_pickle=False).reshape(OUTPUT_SHAPE)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size != OUTPUT_BYTES:
            raise DataError(f"{path}: {size:,} bytes, an output tile is {OUTPUT_BYTES:,} (changed while being read?)")
        return np.memmap(fh, dtype=OUTPUT_DTYPE, mode="r", shape=OUTPUT_SHAPE)


# --- finding ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutputFile:
    """An output-like file ``<stem>_<index>.<ext>`` found in a result folder."""

    path: Path
    stem: str
    index: int
    ext: str

    @classmethod
    def parse(cls, path: Path) -> OutputFile | None:
        match = OUTPUT_NAME_RE.match(path.name)
        if match is None or path.name.startswith(".") or path.name.startswith(_TOOL_FILE_PREFIXES):
            return None
        return cls(path, match["stem"], int(match["index"]), match["ext"])


@dataclass(frozen=True)
class ResultFolder:
    """Where the outputs under ``root`` are and which layout they follow (``how`` says why)."""

    root: Path
    layout: str
    output_dirs: tuple[Path, ...]
    outputs: tuple[OutputFile, ...]
    extras: tuple[Path, ...]
    run_records: tuple[Path, ...]
    how: str

    @property
    def expected_index(self) -> int:
        return OUTPUT_INDEX[self.layout]

    @property
    def expected_ext(self) -> str:
        return EXTENSION[self.layout]

    def describe(self) -> str:
        dirs = ", ".join(_rel(d, self.root) for d in self.output_dirs)
        return f"layout {self.layout} ({LAYOUT_HELP[self.layout]}): {len(self.outputs)} files in {dirs} - {self.how}"


def locate_results(root: str | os.PathLike[str], layout: str | None = None) -> ResultFolder:
    """Find the outputs under ``root`` and decide the layout (``layout`` if given, else from the structure).

    Structure: ``dumpOutput_device<id>/`` folders (in ``root`` or ``root/result/``, or ``root`` itself being
    one) mean the legacy tool; otherwise the outputs are in ``root`` or in its single sub-folder holding some
    (ais_bench's ``--output`` folder). Several such sub-folders are ambiguous (an error naming them). A flat
    folder of ``_1.bin`` files with no ais_bench summary is a copied ``dumpOutput_device`` folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"result folder {root} does not exist or is not a folder")
    if layout is not None:
        check_layout(layout)
    device_dirs = _device_dirs(root)
    if device_dirs:
        dirs, structure = device_dirs, "legacy benchmark folders " + ", ".join(d.name + "/" for d in device_dirs)
    elif _outputs_in(root):
        dirs, structure = [root], "outputs directly in the folder"
    else:
        subdirs = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".") and _outputs_in(d)]
        if len(subdirs) > 1:
            raise DataError(f"{root} holds outputs in {len(subdirs)} folders ({', '.join(d.name for d in subdirs)}); "
                            "pass the one to judge (e.g. result/result_bs16)")
        if not subdirs:
            raise DataError(f"no outputs in {root}: expected <stem>_0.bin (ais_bench), dumpOutput_device<id>/"
                            "<stem>_1.bin (legacy benchmark) or <stem>_0.npy files, here or one folder down")
        dirs, structure = subdirs, f"outputs in the sub-folder {subdirs[0].name}/"
    outputs = tuple(f for d in dirs for f in map(OutputFile.parse, _files(d)) if f is not None)
    hint = _ais_bench_hint(dirs[0]) if not device_dirs else None
    if layout is not None:
        how = f"as requested ({structure})"
    elif device_dirs or DEVICE_DIR_RE.match(root.name):
        layout, how = "benchmark", f"from the structure ({structure})"
    else:
        exts = {f.ext for f in outputs}
        indices = {f.index for f in outputs if f.ext == "bin"}
        if exts == {"npy"}:
            layout, how = "npy", f"all outputs are .npy ({structure})"
        elif indices == {LEGACY_OUTPUT_INDEX} and hint is None:
            layout, how = "benchmark", f"all outputs are <stem>_1.bin with no ais_bench summary: a copied " \
                                       f"dumpOutput_device folder ({structure})"
        else:
            layout = "ais_bench"
            how = f"{structure}; {hint}" if hint else f"{structure}, .bin outputs not under dumpOutput_device"
    scanned = {f.path for f in outputs}
    extras, records = [], []
    between = [d.parent for d in dirs if d.parent != root and d.parent.is_relative_to(root)]  # e.g. result/
    for directory in dict.fromkeys([root, *between, *dirs]):
        for path in _files(directory):
            if path in scanned:
                continue
            (records if RUN_RECORD_RE.match(path.name) else extras).append(path)
    return ResultFolder(root, layout, tuple(dirs), outputs, tuple(extras), tuple(records), how)


def _device_dirs(root: Path) -> list[Path]:
    for base in (root, root / "result"):
        if base.is_dir():
            found = sorted((d for d in base.iterdir() if d.is_dir() and DEVICE_DIR_RE.match(d.name)),
                           key=lambda d: int(DEVICE_DIR_RE.match(d.name)["device"]))
            if found:
                return found
    return []


def _files(directory: Path) -> list[Path]:
    """The plain files of ``directory`` in natural order (2_0.bin before 10_0.bin), via ``os.scandir``."""
    with os.scandir(directory) as it:
        names = sorted((e.name for e in it if e.is_file()), key=_natural_key)
    return [directory / name for name in names]


def _natural_key(name: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _outputs_in(directory: Path) -> bool:
    return any(OutputFile.parse(p) is not None for p in _files(directory))


def _ais_bench_hint(folder: Path) -> str | None:
    if (folder.parent / f"{folder.name}_summary.json").is_file():
        return f"ais_bench summary {folder.name}_summary.json beside it"
    if (folder / "sumary.json").is_file():
        return "ais_infer summary sumary.json in it"
    summaries = sorted(folder.glob("*_summary.json"))
    return f"ais_bench summary {summaries[0].name} in it" if summaries else None


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return str(path)
    return str(rel) + "/" if str(rel) != "." else str(root) + "/"


# --- validating ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResultProblem:
    """One problem of a :data:`PROBLEM_KINDS` kind, naming the file and/or the tile."""

    kind: str
    what: str  # the file or tile, e.g. "17_0.bin (scan 1.3.6…, tile 3)"
    detail: str = ""

    def line(self) -> str:
        return f"{self.what}: {self.detail}" if self.detail else self.what


class ResultsError(DataError):
    """A result folder that cannot be judged. ``problems`` lists every problem found; the first line of the
    message counts them by kind, the next lines name the files and tiles (a few per kind)."""

    def __init__(self, root: Path, problems: list[ResultProblem], context: str = "") -> None:
        self.root, self.problems = root, problems
        counts: dict[str, int] = {}
        for p in problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        lines = [f"{root}: the results cannot be judged: {summary}" + (f" ({context})" if context else "")]
        for kind in counts:
            named = [p.line() for p in problems if p.kind == kind]
            more = f"; and {len(named) - _MAX_NAMED} more" if len(named) > _MAX_NAMED else ""
            hint = f" -> {KIND_HINTS[kind]}" if kind in KIND_HINTS else ""
            lines.append(f"  {kind} - {PROBLEM_KINDS[kind]}: {'; '.join(named[:_MAX_NAMED])}{more}{hint}")
        super().__init__("\n".join(lines))

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}


def validate_outputs(folder: ResultFolder, tiles: Mapping[str, str] | None = None
                     ) -> tuple[dict[str, OutputFile], list[ResultProblem]]:
    """Check every output-like file of ``folder``: format, output index, size (or ``.npy`` header), duplicates;
    with ``tiles`` (``{stem: "scan <uid>, tile <k>"}``) also missing outputs and outputs of unknown tiles.

    Returns ``({stem: OutputFile}`` of the usable outputs, problems``)``. Contents (NaN/Inf) are checked when
    the outputs are read, by the post-processor.
    """
    problems: list[ResultProblem] = []
    usable: dict[str, OutputFile] = {}
    seen: dict[str, OutputFile] = {}
    want_index, want_ext = folder.expected_index, folder.expected_ext

    def label(stem: str) -> str:
        return f" ({tiles[stem]})" if tiles is not None and stem in tiles else ""

    for f in folder.outputs:
        name = _rel(f.path, folder.root).rstrip("/")
        if tiles is not None and f.stem not in tiles:
            problems.append(ResultProblem("unknown_tile", name, f"input {f.stem}.bin is not in the manifest"))
            continue
        if f.ext == "txt":
            problems.append(ResultProblem("text_output", name + label(f.stem)))
            continue
        if f.ext != want_ext:
            problems.append(ResultProblem("wrong_format", name + label(f.stem),
                                          f".{f.ext} file, the {folder.layout} layout has .{want_ext} outputs"))
            continue
        if f.index != want_index:
            problems.append(ResultProblem("output_index", name + label(f.stem), _index_detail(folder, f)))
            continue
        if f.stem in seen:
            problems.append(ResultProblem("duplicate", name + label(f.stem),
                                          f"also {_rel(seen[f.stem].path, folder.root).rstrip('/')}"))
            usable.pop(f.stem, None)
            continue
        seen[f.stem] = f
        problem = _npy_problem(f.path) if f.ext == "npy" else _bin_problem(f.path)
        if problem is not None:
            problems.append(ResultProblem(problem[0], name + label(f.stem), problem[1]))
        else:
            usable[f.stem] = f
    if tiles is not None:
        present = {f.stem for f in folder.outputs}
        want = output_relpath("<stem>", folder.layout).name
        problems += [ResultProblem("missing", f"{stem}.bin ({where})", f"no {want.replace('<stem>', stem)}")
                     for stem, where in tiles.items() if stem not in present]
    return usable, problems


def _index_detail(folder: ResultFolder, f: OutputFile) -> str:
    tool = {"ais_bench": "ais_bench", "npy": "ais_bench", "benchmark": "the legacy benchmark tool"}[folder.layout]
    other = "the legacy benchmark tool's 1-based name" if f.index == LEGACY_OUTPUT_INDEX else \
        "ais_bench's 0-based name" if f.index == AIS_BENCH_OUTPUT_INDEX else "a second model output?"
    return f"output index {f.index} where {tool} writes {f.stem}_{folder.expected_index}.{f.ext} ({other})"


def _bin_problem(path: Path) -> tuple[str, str] | None:
    size = path.stat().st_size
    if size == OUTPUT_BYTES:
        return None
    if size < OUTPUT_BYTES:
        hint = " - half a tile: float16 outputs, or an input tile?" if 2 * size == OUTPUT_BYTES else ""
        return "truncated", f"{size:,} of {OUTPUT_BYTES:,} bytes{hint}"
    hint = f" = {size // OUTPUT_BYTES} tiles in one file" if size % OUTPUT_BYTES == 0 else ""
    return "oversized", f"{size:,} bytes, one tile is {OUTPUT_BYTES:,}{hint}"


def _npy_problem(path: Path) -> tuple[str, str] | None:
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
    except (OSError, ValueError) as exc:
        return "bad_npy", f"not a readable .npy ({exc})"
    if dtype != OUTPUT_DTYPE or shape not in (OUTPUT_SHAPE, (1, *OUTPUT_SHAPE)) or fortran:
        return "bad_npy", (f"{dtype} {shape}{' Fortran order' if fortran else ''}, expected float32 {OUTPUT_SHAPE} "
                           "in C order")
    size = path.stat().st_size - offset
    if size < OUTPUT_BYTES:
        return "truncated", f"{size:,} of {OUTPUT_BYTES:,} bytes of data"
    return None


# --- several runs under one folder (replay of results copied from an Ascend host) ---------------------------------

_BATCH_RE = re.compile(r"bs_?(\d+)|batchsize_(\d+)", re.IGNORECASE)


def find_result_folders(root: str | os.PathLike[str], max_depth: int = 4) -> list[tuple[str, Path]]:
    """Every run under ``root`` as ``(source, folder)``: ``source`` is ``om_bs<N>`` when the batch size shows in
    a folder name (``result_bs16``) or a legacy perf file (``perf_vision_batchsize_16_device_0.txt``), else
    ``replay``; ``folder`` is what :func:`locate_results` takes. Duplicate sources get the folder name added."""
    root = Path(root)
    found: dict[Path, str | None] = {}
    for directory in _walk(root, max_depth):
        if DEVICE_DIR_RE.match(directory.name):
            parent = directory.parent
            base = parent.parent if parent.name == "result" else parent
            if base not in found:
                found[base] = _batch_from_names([parent, base]) or _batch_from_files(parent.glob("perf_*.txt"))
        elif _outputs_in(directory) and not any(directory.is_relative_to(b) for b in found):
            found[directory] = _batch_from_names([directory, directory.parent])
    out: list[tuple[str, Path]] = []
    labels = [f"om_bs{bs}" if bs else "replay" for bs in found.values()]
    for (folder, _), label in zip(found.items(), labels):
        out.append((f"{label}.{folder.name}" if labels.count(label) > 1 else label, folder))
    return out


def _walk(root: Path, max_depth: int) -> Iterable[Path]:
    if not root.is_dir() or max_depth < 0:
        return
    yield root
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            yield from _walk(child, max_depth - 1)


def _batch_from_names(paths: Iterable[Path]) -> str | None:
    for path in paths:
        match = _BATCH_RE.search(path.name)
        if match:
            return match.group(1) or match.group(2)
    return None


def _batch_from_files(paths: Iterable[Path]) -> str | None:
    return _batch_from_names(sorted(paths))
