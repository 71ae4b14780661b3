"""Reading any performance file the gate knows: identify its format, parse it, or say precisely why not.

Entry points:

* :func:`parse_perf_file` — one file -> :class:`PerfFileResult` (its format and measurements) or a
  :class:`~vnet_accept.perf.measurement.PerfFileError` naming the file and the reason (``NotAPerfFile`` for
  files of a known other kind: ATC logs, accuracy lines, msit/ait compare output …);
* :func:`parse_perf_paths` — many files or directories -> results and rejections, never an exception for one
  bad file;
* :func:`identify` — the format (or the known non-performance kind) of a text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vnet_accept.perf import ais_bench, legacy, trtexec
from vnet_accept.perf.measurement import NotAPerfFile, PerfFileError, PerfMeasurement
from vnet_accept.perf.text import Line, lines_of, read_text

#: Formats the gate reads, and the name each is reported under.
FORMATS = {
    "legacy_perf": legacy.LEGACY_FORMAT,
    "legacy_pureinfer": legacy.PUREINFER_FORMAT,
    "ais_bench_json": ais_bench.JSON_FORMAT,
    "ais_bench_console": ais_bench.CONSOLE_FORMAT,
    "trtexec": "trtexec log",
}
#: File names a directory scan picks up (a results folder also holds thousands of output tensors).
DIRECTORY_PATTERNS = ("perf_vision_batchsize_*.txt", "PureInfer_perf_of_*.txt", "*summary.json", "sumary.json",
                      "*.log")

_ATC_CODE_LINE = re.compile(r"^(?P<code>[EW][0-9A-Z]\d{4})\s*:")
_ACCURACY_LINE = re.compile(r"^Test set: Error:\s*\d+\s*/\s*\d+")
_MARKDOWN = re.compile(r"^(#{1,6} |\|.*\|$|```)")


@dataclass(frozen=True)
class PerfFileResult:
    source_file: str
    kind: str  # a key of FORMATS
    measurements: tuple[PerfMeasurement, ...]

    @property
    def file_format(self) -> str:
        """The precise format (e.g. which trtexec generation) as the parser saw it."""
        return self.measurements[0].file_format if self.measurements else FORMATS[self.kind]


@dataclass
class PerfScan:
    """What a set of paths gave: results for the files read, and for each file not read, the reason."""

    results: list[PerfFileResult] = field(default_factory=list)
    rejected: list[PerfFileError] = field(default_factory=list)

    @property
    def measurements(self) -> list[PerfMeasurement]:
        return [m for r in self.results for m in r.measurements]


def identify(text: str, source: str = "<text>") -> str:
    """The key of :data:`FORMATS` this text is in; :class:`NotAPerfFile` for a recognised other kind."""
    if not text.strip():
        raise NotAPerfFile(source, "empty file", kind="empty")
    if ais_bench.looks_like_json(text):
        return "ais_bench_json"
    lines = lines_of(text)
    if trtexec.looks_like_trtexec(lines):
        return "trtexec"
    if legacy.looks_like_legacy_perf(lines):
        return "legacy_perf"
    if legacy.looks_like_pureinfer(lines):
        return "legacy_pureinfer"
    if ais_bench.looks_like_console(lines):
        return "ais_bench_console"
    raise _not_a_perf_file(lines, source)


def _not_a_perf_file(lines: list[Line], source: str) -> NotAPerfFile:
    payloads = [line.payload for line in lines]
    if any(p.startswith("# ") for p in payloads) and sum(bool(_MARKDOWN.match(p)) for p in payloads) >= 3:
        return NotAPerfFile(source, "a Markdown document, not a tool output", kind="markdown")
    if any(p.startswith(("ATC run success", "ATC run failed", "ATC start working")) for p in payloads):
        codes = _atc_codes(payloads)
        outcome = "success" if any(p.startswith("ATC run success") for p in payloads) else "failure"
        detail = f" with {', '.join(codes)}" if codes else ""
        return NotAPerfFile(source, f"ATC conversion log ({outcome}{detail}), not a performance file", kind="atc")
    if any(p.startswith(("FuncStatus:", "PrecisionStatus:", "PerfStatus:")) for p in payloads):
        return NotAPerfFile(source, "a modelzoo_level.txt (FuncStatus/PrecisionStatus/PerfStatus); pass it with "
                            "--modelzoo-level to check its PerfStatus claim", kind="modelzoo_level")
    codes = _atc_codes(payloads)
    if codes:
        return NotAPerfFile(source, f"ATC/CANN error message ({', '.join(codes)}), not a performance file",
                            kind="atc")
    if any("Operators may lead to inaccuracy" in p or "CosineSimilarity" in p for p in payloads):
        return NotAPerfFile(source, "msit/ait debug compare output (accuracy of operators), not a performance "
                            "file", kind="compare")
    if any(_ACCURACY_LINE.match(p) for p in payloads):
        return NotAPerfFile(source, "post-processing accuracy line ('Test set: Error: …'), not a performance "
                            "file; the accuracy side of the gate reads it", kind="accuracy")
    return NotAPerfFile(source, "no performance figures recognised; expected a legacy benchmark perf_vision file, "
                        "a PureInfer summary, an ais_bench summary JSON or console log, or a trtexec log",
                        kind="unknown")


def _atc_codes(payloads: list[str]) -> list[str]:
    codes = []
    for p in payloads:
        m = _ATC_CODE_LINE.match(p)
        if m and m.group("code") not in codes:
            codes.append(m.group("code"))
    return codes


def parse_perf_text(text: str, source: str, *, statistic: str = "port",
                    batch_size: int | None = None) -> PerfFileResult:
    kind = identify(text, source)
    parse: Callable[..., list[PerfMeasurement]]
    if kind == "ais_bench_json":
        measurements = ais_bench.parse_summary_json(text, source, statistic=statistic, batch_size=batch_size)
    else:
        parse = {"trtexec": trtexec.parse_trtexec, "legacy_perf": legacy.parse_legacy_perf,
                 "legacy_pureinfer": legacy.parse_pureinfer, "ais_bench_console": ais_bench.parse_console}[kind]
        measurements = parse(lines_of(text), source, statistic=statistic, batch_size=batch_size)
    return PerfFileResult(source, kind, tuple(measurements))


def parse_perf_file(path: str | Path, *, statistic: str = "port", batch_size: int | None = None) -> PerfFileResult:
    return parse_perf_text(read_text(path), str(path), statistic=statistic, batch_size=batch_size)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a directory contributes its files matching :data:`DIRECTORY_PATTERNS` (recursively)."""
    expanded: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = {p for pattern in DIRECTORY_PATTERNS for p in path.rglob(pattern) if p.is_file()}
            expanded += sorted(found)
        else:
            expanded.append(path)
    return expanded


def parse_perf_paths(paths: Iterable[str | Path], *, statistic: str = "port",
                     batch_size: int | None = None) -> PerfScan:
    scan = PerfScan()
    for path in expand_paths(paths):
        try:
            scan.results.append(parse_perf_file(path, statistic=statistic, batch_size=batch_size))
        except PerfFileError as exc:
            scan.rejected.append(exc)
    return scan
