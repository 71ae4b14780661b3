"""Reading tool output as text: encodings, line endings, log prefixes, numbers with units, names with bs/device.

Tool output reaches the gate copied through READMEs, terminals and Windows editors, so every parser sees lines
that may end in CRLF, be indented, carry ``[INFO]``/``[I]`` and timestamp prefixes, and glue units to numbers
(``157.113samples/s``). This module normalises all of that once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vnet_accept.perf.measurement import NotAPerfFile, PerfFileError

#: A decimal number as the tools print it (``6.10496``, ``1e-05``, ``.5``).
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
#: Files larger than this are not tool summaries (a trtexec log with per-layer profiles stays far below).
MAX_TEXT_BYTES = 64 << 20
#: Bytes inspected to tell a binary file (an ``.om``, an output ``.bin``) from text.
_SNIFF_BYTES = 8192

# One log prefix at a time: ``[INFO]``, ``[W]``, ``[TRT]``, ``[09/17/2021-15:39:40]``, ``2023-04-19 13:54:10(1005)-``.
_PREFIX = re.compile(
    r"^(?:\[(?:INFO|WARN|WARNING|ERROR|DEBUG|I|W|E|V|TRT)\]"
    r"|\[\d{2}/\d{2}/\d{4}-\d{2}:\d{2}:\d{2}\]"
    r"|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\(\d+\))?-?)\s*"
)
_BS_IN_NAME = (
    re.compile(r"batchsize[_-]?(\d+)", re.IGNORECASE),
    re.compile(r"(?:^|[_\-.])bs[_-]?(\d+)(?=$|[_\-.])", re.IGNORECASE),
)
_DEVICE_IN_NAME = re.compile(r"device[_-]?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    """One line of a tool's output: its 1-based number, the text stripped of whitespace, and of log prefixes."""

    number: int
    text: str
    payload: str


def read_text(path: str | Path) -> str:
    """The file's text, or :class:`NotAPerfFile`/:class:`PerfFileError` naming why it cannot be one."""
    path = Path(path)
    name = str(path)
    if path.is_dir():
        raise PerfFileError(name, "is a directory; pass the performance files in it (or the directory itself "
                            "to `vnet-accept perf`, which picks its performance files)", kind="directory")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            if b"\x00" in head:
                what = {".om": "an Ascend offline model (.om)", ".onnx": "an ONNX model",
                        ".bin": "a raw tensor (.bin)"}.get(path.suffix.lower(), "a binary file")
                raise NotAPerfFile(name, f"{what}, not a performance file", kind="binary")
            if size > MAX_TEXT_BYTES:
                raise PerfFileError(name, f"{size / 2**20:.0f} MiB is too large for a tool summary; pass the "
                                    "performance file or log of one run", kind="too large")
            data = head + fh.read()
    except FileNotFoundError:
        raise PerfFileError(name, "no such file; check the path", kind="missing") from None
    except PermissionError:
        raise PerfFileError(name, "permission denied; make the file readable", kind="unreadable") from None
    except IsADirectoryError:  # pragma: no cover - raced with the is_dir check
        raise PerfFileError(name, "is a directory", kind="directory") from None
    return decode(data)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM); anything else byte-for-byte as Latin-1 so no input makes us crash."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def strip_prefixes(text: str) -> str:
    """``[INFO] [05/27/2023-12:05:31] [I] Throughput: 1 qps`` -> ``Throughput: 1 qps``."""
    text = text.strip()
    while True:
        match = _PREFIX.match(text)
        if not match or not match.group(0):
            return text
        text = text[match.end():]


def lines_of(text: str) -> list[Line]:
    """Non-blank lines; ``splitlines`` treats CRLF, CR and LF alike."""
    result = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped:
            result.append(Line(number, stripped, strip_prefixes(stripped)))
    return result


def to_float(text: str, source: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PerfFileError(source, f"{what}: {text!r} is not a number") from None


def batch_size_from_name(name: str) -> int | None:
    """``perf_vision_batchsize_16_device_1.txt`` -> 16, ``trtexec_t4_bs16.log`` -> 16, else None."""
    base = Path(name).name
    for pattern in _BS_IN_NAME:
        match = pattern.search(base)
        if match and int(match.group(1)) >= 1:
            return int(match.group(1))
    return None


def device_id_from_name(name: str) -> int | None:
    match = _DEVICE_IN_NAME.search(Path(name).name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class BatchSize:
    value: int
    source: str  # "content (…)", "--batch-size", "file name"
    warnings: tuple[str, ...] = ()


def choose_batch_size(source: str, content: tuple[int, str] | None, explicit: int | None,
                      looked_for: str = "the content does not state it") -> BatchSize:
    """The batch size of a file: its content first, then ``--batch-size``, then its name, else a clear error.

    ``content`` is ``(value, where it was read)``; ``looked_for`` says what in the content was searched, for the
    error. A name that disagrees with the content is a warning (files
    get renamed); a ``--batch-size`` that disagrees with the content is an error (the user believes something
    about the run that is not true).
    """
    from_name = batch_size_from_name(source)
    if content is not None:
        value, where = content
        if value < 1:
            raise PerfFileError(source, f"batch size {value} ({where}) is not a batch size; a run needs bs >= 1")
        if explicit is not None and explicit != value:
            raise PerfFileError(source, f"the content says bs{value} ({where}) but --batch-size {explicit} was "
                                "given; drop --batch-size or check which run this file is from")
        warnings = ()
        if from_name is not None and from_name != value:
            warnings = (f"the file name says bs{from_name} but the content says bs{value} ({where}); "
                        "using the content",)
        return BatchSize(value, f"content ({where})", warnings)
    if explicit is not None:
        return BatchSize(explicit, "--batch-size")
    if from_name is not None:
        return BatchSize(from_name, "file name")
    raise PerfFileError(source, f"no batch size: {looked_for} and the file name carries none; pass "
                        "--batch-size N, or name the file with _bs<N> (e.g. trtexec_t4_bs16.log)",
                        kind="no batch size")


def parse_shape(text: str) -> tuple[int, ...] | None:
    """``16x1x64x80x80`` or ``16,1,64,80,80`` -> (16, 1, 64, 80, 80); None if it is not a shape."""
    parts = re.split(r"[x,]", text.strip())
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)
