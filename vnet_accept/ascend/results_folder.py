"""The ``--npu-results DIR`` folder: results and logs copied from an Ascend host, read for judging (issue 5).

A contributor who followed the port's guide has, per batch size, a folder of outputs and a performance file,
plus the ATC consoles; the gate reads what is there, detects the rest, and says what is missing. Layout (each
part optional except the outputs of the batch sizes judged; names are matched as shown)::

    DIR/
      result_bs1/<stem>_0.bin            ais_bench --output DIR --output_dirname result_bs1   (0-based index)
      result_bs1_summary.json            its summary (throughput; ``filesinfo`` = which tiles shared a batch)
      result_bs16/ …  result_bs16_summary.json  (result_bs16_device<D>_summary.json per chip when sharded)
      bs16/result/dumpOutput_device0/<stem>_1.bin     or the legacy benchmark's folders   (1-based index)
      bs16/result/perf_vision_batchsize_16_device_0.txt
      bs16/*.info                        the info file(s) that run read (its batch composition)
      perf/                              pure-inference throughput sweep, preferred for throughput:
                                         ais_bench consoles (*.log), *_summary.json, PureInfer_perf_of_*.txt
      atc_bs1.log, atc_bs16.log          ATC's console per batch size; a last line ``ATC exit status N``
                                         (``echo "ATC exit status $?" >> atc_bs16.log``) records the exit status
      npu-smi.txt                        ``npu-smi info``: the SoC (Ascend310 -> 4 chips per card, 310P -> 1)
      manifest.json                      copy of ``prep_bin/manifest.json`` (vnet-accept's preprocessing), or
      prep_bin.sha256                    ``sha256sum prep_bin/*.bin`` (the port's vnet_preprocess.py)
      vnet_prep_bin.info                 the info file of a legacy run, when not inside the batch-size folder
      *.onnx                             (one) the ONNX the OMs were converted from; parity is judged against it

Batch-size folders are found by name (``result_bs16``, ``bs16``, ``batchsize_16``) with
:func:`vnet_accept.results.layouts.find_result_folders`, so ``accuracy.error_rate.om_bs<N>`` means the same
folder everywhere. :func:`load_npu_results` never raises for a missing optional part; it records what it found,
what it assumed and what is missing (:class:`NpuResults`), and the tests turn that into verdicts and skips.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnet_accept.ascend.atc import AtcLog, parse_atc_log
from vnet_accept.errors import DataError, ToolError
from vnet_accept.results.layouts import ResultFolder, find_result_folders, locate_results

MANIFEST_COPY = "manifest.json"
SHA_LISTING = "prep_bin.sha256"
NPU_SMI_NAMES = ("npu-smi.txt", "npu_smi.txt", "npu-smi-info.txt", "npu_smi_info.txt")
PERF_DIR = "perf"
_ATC_LOG = re.compile(r"^atc.*?(?:bs|batchsize)_?(?P<bs>\d+).*\.(?:log|txt)$", re.IGNORECASE)
_ATC_EXIT = re.compile(r"(?:ATC\s+)?exit\s+status\s*[:=]?\s*(?P<code>-?\d+)", re.IGNORECASE)
_SHA_LINE = re.compile(r"^(?P<sha>[0-9a-fA-F]{64})\s+\*?(?P<path>.+)$")
_LABEL_BS = re.compile(r"^om_bs(?P<bs>\d+)")
#: How each kind of throughput figure ranks: a pure-inference sweep measures the model, not the file I/O.
PERF_KIND_RANK = {"pure": 0, "console": 1, "dataset": 2}
PERF_KIND_HELP = {
    "pure": "pure-inference sweep (ais_bench without --input / --loop, legacy -round, or a file under perf/)",
    "console": "an ais_bench console log outside perf/ (what it timed is not stated)",
    "dataset": "the inference over the tiles (legacy perf_vision file, ais_bench summary of a run with --input)",
}


@dataclass(frozen=True)
class BatchPlan:
    """Which tiles (by input stem) the tool ran together, batch by batch, and how that is known."""

    batch_size: int
    batches: tuple[tuple[str, ...], ...]
    source: str
    assumed: bool

    def complete_batches(self) -> list[tuple[str, ...]]:
        """Batches of ``batch_size`` distinct tiles (a padded last batch repeats a file and is left out)."""
        return [b for b in self.batches if len(b) == self.batch_size and len(set(b)) == len(b)]

    def batch_of(self, stem: str) -> tuple[str, ...] | None:
        return next((b for b in self.batches if stem in b), None)


@dataclass(frozen=True)
class BatchResults:
    """One batch size's outputs: the folder :func:`~vnet_accept.results.layouts.locate_results` takes, its layout,
    the tool files beside it, and the batch composition."""

    batch_size: int
    folder: Path
    located: ResultFolder
    summaries: tuple[Path, ...]
    info_files: tuple[Path, ...]
    plan: BatchPlan

    @property
    def layout(self) -> str:
        return self.located.layout

    def stems(self) -> list[str]:
        return [f.stem for f in self.located.outputs]

    def outputs(self, labels: dict[str, str] | None = None) -> dict[str, Path]:
        """``{stem: output file}`` after :func:`~vnet_accept.results.layouts.validate_outputs` (sizes, output index,
        duplicates; with ``labels`` = ``{stem: "scan …, tile …"}`` also unknown tiles); any problem raises
        :class:`~vnet_accept.results.layouts.ResultsError` naming the files. Missing tiles are not a problem here
        (the accuracy criterion counts them)."""
        from vnet_accept.results.layouts import ResultsError, validate_outputs

        usable, problems = validate_outputs(self.located, labels)
        problems = [p for p in problems if p.kind != "missing"]
        if problems:
            raise ResultsError(self.folder, problems, self.located.describe())
        return {stem: f.path for stem, f in usable.items()}


@dataclass(frozen=True)
class AtcRecord:
    """An ATC console copied from the host: what it says, and the exit status if the contributor appended it."""

    batch_size: int
    path: Path
    log: AtcLog
    exit_status: int | None
    text: str

    @property
    def succeeded(self) -> bool:
        """Success line, no failure line, no error code, and exit status 0 where it was recorded."""
        return (self.log.success_line and not self.log.failure_line and not self.log.errors
                and self.exit_status in (0, None))


@dataclass(frozen=True)
class InputsCheck:
    """Whether the results were computed from the tiles the gate judges against (by sha256 per input file)."""

    status: str  # "match", "differ" or "unverified"
    source: str
    checked: int = 0
    differing: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        if self.status == "match":
            return f"inputs match: {self.checked} tiles' sha256 agree with the gate's manifest ({self.source})"
        if self.status == "differ":
            shown = "; ".join(self.differing[:5]) + (f"; and {len(self.differing) - 5} more"
                                                     if len(self.differing) > 5 else "")
            return (f"WRONG INPUTS: {len(self.differing)} of {self.checked} tiles differ between {self.source} and "
                    f"the gate's manifest: {shown}. {self.detail}".rstrip())
        return f"inputs not verified: {self.detail}"


@dataclass
class NpuResults:
    """What ``--npu-results DIR`` holds (see the module docstring). ``problems`` are reasons a part could not be
    used; ``notes`` what was assumed; neither stops the other parts from being judged."""

    root: Path
    batches: dict[int, BatchResults] = field(default_factory=dict)
    batch_errors: dict[int, str] = field(default_factory=dict)
    unassigned: list[Path] = field(default_factory=list)
    atc: dict[int, AtcRecord] = field(default_factory=dict)
    npu_smi: Path | None = None
    soc_version: str | None = None
    manifest_copy: Path | None = None
    sha_listing: Path | None = None
    onnx: Path | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        sizes = ", ".join(f"bs{bs} ({b.layout}, {len(b.located.outputs)} outputs)" for bs, b in sorted(
            self.batches.items())) or "no batch-size folders"
        return f"{self.root}: {sizes}"

    def results_for(self, batch_size: int) -> BatchResults:
        """The outputs of ``batch_size``, or :class:`DataError` saying what was expected where."""
        if batch_size in self.batches:
            return self.batches[batch_size]
        if batch_size in self.batch_errors:
            raise DataError(self.batch_errors[batch_size])
        present = ", ".join(f"bs{bs}: {b.folder.relative_to(self.root)}" for bs, b in sorted(self.batches.items()))
        raise DataError(f"no bs{batch_size} results in {self.root} (expected result_bs{batch_size}/<stem>_0.bin from "
                        f"ais_bench --output_dirname result_bs{batch_size}, or bs{batch_size}/result/"
                        f"dumpOutput_device<id>/<stem>_1.bin from the legacy tool; found {present or 'none'})")


def load_npu_results(root: str | os.PathLike[str]) -> NpuResults:
    """Read ``root`` (see the module docstring). Raises :class:`DataError` only when ``root`` is no folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--npu-results {root}: no such folder; copy the results from the Ascend host there")
    results = NpuResults(root)
    _find_batches(results)
    _find_atc_logs(results)
    _find_npu_smi(results)
    for name in (MANIFEST_COPY, f"prep_bin/{MANIFEST_COPY}"):
        if (root / name).is_file():
            results.manifest_copy = root / name
            break
    if (root / SHA_LISTING).is_file():
        results.sha_listing = root / SHA_LISTING
    onnx = sorted(root.glob("*.onnx"))
    if len(onnx) == 1:
        results.onnx = onnx[0]
    elif onnx:
        results.problems.append(f"{len(onnx)} ONNX files in {root} ({', '.join(p.name for p in onnx)}); keep the "
                                "one the OMs were converted from - none is used")
    return results


def _find_batches(results: NpuResults) -> None:
    by_bs: dict[int, list[Path]] = {}
    for label, folder in find_result_folders(results.root):
        m = _LABEL_BS.match(label)
        if m is None:
            results.unassigned.append(folder)
            continue
        by_bs.setdefault(int(m["bs"]), []).append(folder)
    if results.unassigned:
        results.notes.append("result folders without a batch size in their name (not judged): "
                             + ", ".join(str(p.relative_to(results.root)) for p in results.unassigned)
                             + "; name them result_bs<N> (ais_bench) or bs<N> (legacy)")
    for bs, folders in sorted(by_bs.items()):
        if len(folders) > 1:
            names = ", ".join(str(p.relative_to(results.root)) for p in folders)
            results.batch_errors[bs] = f"two result folders for bs{bs} in {results.root} ({names}); keep one"
            continue
        folder = folders[0]
        try:
            located = locate_results(folder)
        except DataError as exc:
            results.batch_errors[bs] = f"bs{bs}: {exc}"
            continue
        summaries = _summaries(folder)
        infos = _info_files(folder, results.root)
        plan = _plan(bs, located, summaries, infos)
        results.batches[bs] = BatchResults(bs, folder, located, tuple(summaries), tuple(infos), plan)


def _summaries(folder: Path) -> list[Path]:
    """ais_bench summaries of the run that wrote ``folder``: ``<name>*_summary.json`` beside it, or inside it."""
    own = re.compile(rf"^{re.escape(folder.name)}(?:_device\d+)?_summary\.json$")
    beside = sorted(p for p in folder.parent.glob(f"{folder.name}*_summary.json") if own.match(p.name))
    inside = sorted(p for pattern in ("*_summary.json", "sumary.json") for p in folder.glob(pattern))
    return beside + inside


def _info_files(folder: Path, root: Path) -> list[Path]:
    """Info files of a legacy run: in the batch-size folder or its ``result/`` (one per chip when sharded), else
    the ones in ``root``."""
    own = sorted({*folder.glob("*.info"), *(folder / "result").glob("*.info")})
    return own or sorted(root.glob("*.info"))


def _natural_key(text: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def _plan(bs: int, located: ResultFolder, summaries: list[Path], infos: list[Path]) -> BatchPlan:
    stems = [f.stem for f in located.outputs]
    if located.layout != "benchmark":
        batches: list[tuple[str, ...]] = []
        unreadable = ""
        for path in summaries:
            try:
                files = json.loads(path.read_text()).get("filesinfo")
            except (OSError, ValueError, AttributeError) as exc:
                files = None
                unreadable = f"; {path.name} is unreadable ({type(exc).__name__}: {str(exc)[:80]})"
            if not isinstance(files, dict) or not files:
                batches = []
                break
            for key in sorted(files, key=_natural_key):
                infiles = files[key].get("infiles", []) if isinstance(files[key], dict) else []
                batches.append(tuple(Path(str(f)).stem for f in infiles))
        if batches:
            names = ", ".join(p.name for p in summaries)
            return BatchPlan(bs, tuple(batches), f"filesinfo of {names}", assumed=False)
        ordered = sorted(stems, key=_natural_key)
        return BatchPlan(bs, _chunks(ordered, bs), "assumed: consecutive tiles in natural file-name order (newer "
                         "ais_bench; older versions sorted names as text) — no summary with filesinfo" + unreadable,
                         assumed=True)
    if infos:
        orders = [[Path(line.split()[1]).stem for line in path.read_text().splitlines() if len(line.split()) >= 2]
                  for path in infos]
        names = ", ".join(p.name for p in infos)
        if len(infos) == 1 and len(located.output_dirs) > 1:  # one info file, the tiles sharded over chips
            batches = []
            for device_dir in located.output_dirs:
                mine = {f.stem for f in located.outputs if f.path.parent == device_dir}
                batches += _chunks([s for s in orders[0] if s in mine], bs)
            return BatchPlan(bs, tuple(batches), f"{names} split by the dumpOutput_device folders (assumed: each "
                             "chip ran its tiles in the info file's order)", assumed=True)
        return BatchPlan(bs, tuple(b for order in orders for b in _chunks(order, bs)), f"info file(s) {names}",
                         assumed=False)
    ordered = sorted(stems, key=_natural_key)
    return BatchPlan(bs, _chunks(ordered, bs), "assumed: consecutive tiles in index order (no info file copied)",
                     assumed=True)


def _chunks(items: list[str], size: int) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(items[i:i + size]) for i in range(0, len(items), size))


def _find_atc_logs(results: NpuResults) -> None:
    for path in sorted(p for d in (results.root, results.root / "atc", results.root / "logs") if d.is_dir()
                       for p in d.iterdir() if p.is_file() and _ATC_LOG.match(p.name)):
        bs = int(_ATC_LOG.match(path.name)["bs"])
        if bs in results.atc:
            results.problems.append(f"two ATC logs for bs{bs}: {results.atc[bs].path.name} and {path.name}; the "
                                    "first is used")
            continue
        text = path.read_text(errors="replace")
        exits = _ATC_EXIT.findall(text)
        results.atc[bs] = AtcRecord(bs, path, parse_atc_log(text), int(exits[-1]) if exits else None, text)


def _find_npu_smi(results: NpuResults) -> None:
    from vnet_accept.ascend.npu_smi import parse_npu_smi_info, soc_version_of

    for name in NPU_SMI_NAMES:
        path = results.root / name
        if path.is_file():
            results.npu_smi = path
            try:
                results.soc_version = soc_version_of(parse_npu_smi_info(path.read_text(errors="replace")))
            except ToolError as exc:
                results.problems.append(f"{name}: {exc}")
            return


# --- do the results belong to the tiles judged? ----------------------------------------------------------------

def check_inputs(results: NpuResults, manifest: Any) -> InputsCheck:
    """Compare the inputs the host used (``manifest.json`` copy or ``prep_bin.sha256``) with the gate's
    ``manifest`` (a :class:`~vnet_accept.data.prepare.Manifest`), tile by tile, by file stem and sha256."""
    if results.manifest_copy is not None:
        from vnet_accept.data.prepare import load_manifest

        try:
            theirs = load_manifest(results.manifest_copy.parent, allow_incomplete=True)
        except DataError as exc:
            return InputsCheck("differ", results.manifest_copy.name, detail=f"unreadable: {exc}",
                               differing=("the manifest copy itself",))
        listed = {e.stem: (e.uid, e.tile, e.sha256) for e in theirs.entries}
        source = f"{results.manifest_copy.relative_to(results.root)} ({len(listed)} tiles)"
        return _compare(listed, manifest, source, with_keys=True)
    if results.sha_listing is not None:
        listed = {}
        for number, line in enumerate(results.sha_listing.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            m = _SHA_LINE.match(line.strip())
            if m is None:
                return InputsCheck("differ", results.sha_listing.name, differing=(f"line {number}",),
                                   detail=f"line {number} is not '<sha256>  <path>' (sha256sum's format)")
            if m["path"].endswith(".bin"):
                listed[Path(m["path"]).stem] = (None, None, m["sha"].lower())
        return _compare(listed, manifest, f"{SHA_LISTING} ({len(listed)} files)", with_keys=False)
    return InputsCheck("unverified", "", detail=(
        f"{results.root} holds neither {MANIFEST_COPY} (copy prep_bin/manifest.json) nor {SHA_LISTING} "
        "(`sha256sum prep_bin/*.bin > prep_bin.sha256` on the host); outputs are matched to tiles by file stem only"))


def _compare(listed: dict[str, tuple], manifest: Any, source: str, with_keys: bool) -> InputsCheck:
    ours = {e.stem: (e.uid, e.tile, e.sha256) for e in manifest.entries}
    differing = []
    for stem, (uid, tile, sha) in ours.items():
        if stem not in listed:
            differing.append(f"{stem}.bin (scan {uid}, tile {tile}) is not in {source.split(' ')[0]}")
            continue
        t_uid, t_tile, t_sha = listed[stem]
        if with_keys and (t_uid, t_tile) != (uid, tile):
            differing.append(f"{stem}.bin is scan {t_uid} tile {t_tile} there, scan {uid} tile {tile} here")
        elif t_sha != sha:
            differing.append(f"{stem}.bin (scan {uid}, tile {tile}) has another sha256 ({t_sha[:12]}… vs {sha[:12]}…)")
    extra = sorted(set(listed) - set(ours), key=_natural_key)
    differing += [f"{stem}.bin is there but not in the gate's manifest" for stem in extra]
    if differing:
        return InputsCheck("differ", source, len(ours), tuple(differing),
                           "Judge with the --luna16-root/--test-uids the host's tiles were prepared from "
                           "(the port's UID file loses its last line when it has no final newline: 133 vs 134 scans).")
    return InputsCheck("match", source, len(ours))


# --- throughput figures -------------------------------------------------------------------------------------------

@dataclass
class PerfEvidence:
    """Every NPU throughput figure found, its kind (:data:`PERF_KIND_HELP`), and per batch size the ones judged
    (all figures of the best-ranked kind there: one per chip when several chips ran)."""

    all: list[tuple[Any, str]] = field(default_factory=list)  # (PerfMeasurement, kind)
    chosen: dict[int, list[Any]] = field(default_factory=dict)
    chosen_kind: dict[int, str] = field(default_factory=dict)
    # bs -> why no figure could be made: a live run that failed, or the batch size's summary is there but unreadable
    failures: dict[int, str] = field(default_factory=dict)
    rejected: list[Any] = field(default_factory=list)  # PerfFileError of files that are not NPU figures
    gpu_logs: list[str] = field(default_factory=list)


def collect_perf(results: NpuResults, statistic: str = "port") -> PerfEvidence:
    """Read every performance file under the folder (:func:`vnet_accept.perf.parsers.parse_perf_paths`) and choose,
    per batch size, the pure-inference figures if any, else console figures, else the dataset run's."""
    from vnet_accept.perf.parsers import parse_perf_paths

    scan = parse_perf_paths([results.root], statistic=statistic)
    evidence = PerfEvidence(rejected=[e for e in scan.rejected if e.kind not in ("atc",)])
    unreadable = _unreadable_tool_files(evidence.rejected)
    for m in scan.measurements:
        if m.scope == "gpu":
            evidence.gpu_logs.append(m.source_file)
            continue
        evidence.all.append((m, _perf_kind(m, results.root)))
    for bs in sorted({m.batch_size for m, _ in evidence.all}):
        ranked = sorted(((PERF_KIND_RANK[k], m) for m, k in evidence.all if m.batch_size == bs),
                        key=lambda pair: pair[0])
        best = ranked[0][0]
        evidence.chosen[bs] = [m for rank, m in ranked if rank == best]
        evidence.chosen_kind[bs] = next(k for k, rank in PERF_KIND_RANK.items() if rank == best)
    for bs, error in unreadable.items():  # a summary that is there but cannot be read is named, never "expected"
        if bs not in evidence.chosen:
            evidence.failures[bs] = (f"{error.source} is there but unreadable ({error.reason}); copy it again from the "
                                     "host (ais_bench writes it beside the result folder)")
    return evidence


_SUMMARY_NAME = re.compile(r"(?:^|_)(?:bs|batchsize_?)(?P<bs>\d+)(?:_device\d+)?_summary\.json$", re.IGNORECASE)


def _unreadable_tool_files(rejected: list[Any]) -> dict[int, Any]:
    """``{batch size: PerfFileError}`` for ais_bench summaries (``result_bs16_summary.json`` …) that exist but
    could not be read (truncated, empty, not JSON): the first per batch size."""
    found: dict[int, Any] = {}
    for error in rejected:
        m = _SUMMARY_NAME.search(Path(str(error.source)).name)
        if m and error.kind in ("unreadable", "empty", "binary", "unknown"):
            found.setdefault(int(m["bs"]), error)
    return found


def _perf_kind(m: Any, root: Path) -> str:
    from vnet_accept.perf.ais_bench import CONSOLE_FORMAT, JSON_FORMAT
    from vnet_accept.perf.legacy import PUREINFER_FORMAT

    path = Path(m.source_file)
    try:
        in_perf_dir = PERF_DIR in path.relative_to(root).parts[:-1]
    except ValueError:
        in_perf_dir = False
    if m.file_format == PUREINFER_FORMAT or in_perf_dir:
        return "pure"
    if m.file_format == JSON_FORMAT:
        return "dataset" if _ran_on_files(path) else "pure"
    if m.file_format == CONSOLE_FORMAT:
        return "console"
    return "dataset"


def _ran_on_files(summary: Path) -> bool:
    """True when an ais_bench summary's ``args`` name an ``--input`` (a run over files, not a pure sweep)."""
    try:
        args = json.loads(summary.read_text()).get("args")
    except (OSError, ValueError, AttributeError):
        return True  # unknown: rank it lowest
    if isinstance(args, dict):
        value = args.get("input")
        return bool(value) and str(value).lower() not in ("none", "null")
    tokens = args if isinstance(args, list) else str(args or "").split()
    for i, token in enumerate(map(str, tokens)):
        if token == "--input":
            return i + 1 < len(tokens) and not str(tokens[i + 1]).startswith("--")
        if token.startswith("--input="):
            return bool(token.split("=", 1)[1])
    return False
