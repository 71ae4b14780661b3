"""ATC: ONNX -> OM, one OM per batch size (SPEC §5), judged by exit status AND the OM on disk.

The port judged conversion by whether a file existed (SPEC §9); here success needs both a zero exit status and
the OM, and OMs left over from an earlier run are removed before ATC starts so they cannot pass for new ones.
The OM's name varies by CANN version (``<output>.om``, ``<output>_linux_x86_64.om``,
``<output>_linux_aarch64.om``). A failure raises :class:`AtcError` carrying the exit status, the error codes
(E10001, E19010, EZ3003 …) and the tail of the log. OMs are cached by the ONNX file's sha256 and the arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from vnet_accept.ascend.process import ProcessResult, run_tool, shell_join, tail
from vnet_accept.ascend.tools import ToolCommand
from vnet_accept.cache import ArtifactCache
from vnet_accept.errors import ToolError
from vnet_accept.io_utils import atomic_write_text, sha256_file
from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_INPUT_SAMPLE_SHAPE

#: ``--framework=5`` is ONNX.
FRAMEWORK_ONNX = 5
OM_SUFFIXES = (".om", "_linux_x86_64.om", "_linux_aarch64.om")
#: A full-size VNet takes minutes to compile; an hour means something is stuck.
ATC_TIMEOUT_S = 3600.0
CACHE_NAMESPACE = "om"
SUCCESS_LINE = "ATC run success"
FAILURE_LINE = "ATC run failed"
_CODE_LINE = re.compile(r"^(?P<code>[EW][0-9A-Z]\d{4})\s*:\s*(?P<text>.*)$")
#: Meaning of the codes a VNet conversion is known to hit (SPEC §5 and the real logs); others print as is.
KNOWN_CODES = {
    "E10001": "bad parameter value",
    "E10007": "missing parameter (e.g. --framework)",
    "E16005": "bad model (duplicate fields)",
    "E19010": "operator or opset with no parser",
    "E40000": "CANN environment broken (a Python module failed to import)",
    "EZ3003": "no kernel for an operator on this SoC",
    "W11001": "an operator falls back to a slower implementation",
}


@dataclass(frozen=True)
class AtcRequest:
    """One conversion: VNet's ONNX to an OM for one batch size and SoC."""

    onnx: Path
    output: Path  # ATC's --output: the OM path without ".om"
    batch_size: int
    soc_version: str
    input_name: str = ONNX_INPUT_NAME
    sample_shape: tuple[int, ...] = ONNX_INPUT_SAMPLE_SHAPE
    input_format: str = "NCDHW"
    log_level: str = "error"
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not self.soc_version:
            raise ValueError("soc_version is required (e.g. Ascend310, Ascend310P3)")

    @property
    def input_shape(self) -> str:
        """``actual_input_1:16,1,64,80,80`` — ATC separates dimensions with commas."""
        return f"{self.input_name}:" + ",".join(str(d) for d in (self.batch_size, *self.sample_shape))

    def cache_inputs(self, onnx_sha256: str, atc_identity: str) -> dict:
        """Everything that decides the OM's bytes (not where it is written, not the log level)."""
        return {"onnx_sha256": onnx_sha256, "batch_size": self.batch_size, "soc_version": self.soc_version,
                "input_shape": self.input_shape, "input_format": self.input_format, "framework": FRAMEWORK_ONNX,
                "extra_args": list(self.extra_args), "atc": atc_identity}


def atc_command(request: AtcRequest, atc: ToolCommand | Sequence[str] = ("atc",)) -> list[str]:
    """The argv of SPEC §5's conversion (the shell quotes around --input_shape are not part of the value)."""
    prefix = list(atc.argv) if isinstance(atc, ToolCommand) else list(atc)
    return [*prefix, f"--model={request.onnx}", f"--framework={FRAMEWORK_ONNX}", f"--output={request.output}",
            f"--input_format={request.input_format}", f"--input_shape={request.input_shape}",
            f"--log={request.log_level}", f"--soc_version={request.soc_version}", *request.extra_args]


def om_candidates(output: Path) -> list[Path]:
    return [output.with_name(output.name + suffix) for suffix in OM_SUFFIXES]


def find_om(output: Path) -> Path | None:
    """The OM ATC wrote for ``--output``; None if there is none. Two candidates: the newest."""
    found = [p for p in om_candidates(output) if p.is_file() and p.stat().st_size > 0]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


@dataclass(frozen=True)
class AtcMessage:
    code: str
    text: str
    line: int

    def describe(self) -> str:
        meaning = KNOWN_CODES.get(self.code)
        return f"{self.code}{f' ({meaning})' if meaning else ''}: {self.text}"


@dataclass(frozen=True)
class AtcLog:
    success_line: bool
    failure_line: bool
    errors: tuple[AtcMessage, ...]
    warnings: tuple[AtcMessage, ...]

    @property
    def error_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.code for m in self.errors))

    @property
    def warning_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.code for m in self.warnings))


def parse_atc_log(text: str) -> AtcLog:
    errors, warnings = [], []
    success = failure = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        success = success or line.startswith(SUCCESS_LINE)
        failure = failure or line.startswith(FAILURE_LINE)
        if m := _CODE_LINE.match(line):
            message = AtcMessage(m.group("code"), m.group("text").strip(), number)
            (warnings if m.group("code").startswith("W") else errors).append(message)
    return AtcLog(success, failure, tuple(errors), tuple(warnings))


class AtcError(ToolError):
    """ATC did not produce an OM. The first line: batch size, exit status, error codes, first error message."""

    def __init__(self, request: AtcRequest, command: Sequence[str], returncode: int | None, log: AtcLog,
                 output: str, problem: str) -> None:
        self.request = request
        self.command = tuple(command)
        self.returncode = returncode
        self.log = log
        self.error_codes = log.error_codes
        self.output_tail = tail(output)
        codes = f"; {', '.join(self.error_codes)}" if self.error_codes else ""
        first = f": {log.errors[0].describe()}" if log.errors else ""
        super().__init__(
            f"ATC failed for bs{request.batch_size} ({problem}{codes}){first}\n"
            f"command: {shell_join(command)}\n"
            f"log tail:\n{self.output_tail or '(no output)'}")


@dataclass(frozen=True)
class AtcResult:
    om_path: Path
    command: tuple[str, ...]
    returncode: int
    log: AtcLog
    duration_s: float
    output: str


def run_atc(request: AtcRequest, atc: ToolCommand | Sequence[str] = ("atc",), *, timeout_s: float = ATC_TIMEOUT_S,
            log_path: str | Path | None = None, env: dict[str, str] | None = None) -> AtcResult:
    """Convert; success = exit status 0 and an OM on disk. Raises :class:`AtcError` otherwise."""
    if not Path(request.onnx).is_file():
        raise ToolError(f"ATC input {request.onnx} does not exist; export the ONNX first")
    request.output.parent.mkdir(parents=True, exist_ok=True)
    for stale in om_candidates(request.output):
        stale.unlink(missing_ok=True)  # an OM from an earlier run must not pass for this one
    command = atc_command(request, atc)
    result: ProcessResult = run_tool(command, timeout_s=timeout_s, tool="atc", log_path=log_path, env=env,
                                     cwd=request.output.parent)
    log = parse_atc_log(result.output)
    om = find_om(request.output)
    if result.returncode != 0:
        raise AtcError(request, command, result.returncode, log, result.output, result.describe_exit())
    if om is None:
        looked = ", ".join(p.name for p in om_candidates(request.output))
        raise AtcError(request, command, 0, log, result.output, f"exit status 0 but no OM written; looked for {looked}")
    return AtcResult(om, result.command, result.returncode, log, result.duration_s, result.output)


def atc_identity(atc: ToolCommand) -> str:
    """Identifies the ATC build for the cache key: its resolved path, size and modification time (a CANN
    upgrade replaces the binary, so a new CANN never reuses an old OM)."""
    path = Path(atc.argv[0]).resolve()
    try:
        st = path.stat()
        return f"{path}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return str(path)


@dataclass(frozen=True)
class OmArtifact:
    om_path: Path
    entry_dir: Path
    cached: bool
    command: tuple[str, ...]
    warnings: tuple[str, ...]


def build_om_cached(cache: ArtifactCache, onnx: Path, batch_size: int, soc_version: str, atc: ToolCommand, *,
                    extra_args: tuple[str, ...] = (), timeout_s: float = ATC_TIMEOUT_S) -> OmArtifact:
    """The OM for (this ONNX's content, batch size, SoC, arguments, ATC build), built once and reused."""
    template = AtcRequest(Path(onnx), Path("vnet"), batch_size, soc_version, extra_args=extra_args)
    inputs = template.cache_inputs(sha256_file(onnx), atc_identity(atc))
    built: list[AtcResult] = []

    def build(tmp: Path) -> None:
        request = replace(template, onnx=Path(onnx).resolve(), output=tmp / f"vnet_bs{batch_size}")
        result = run_atc(request, atc, timeout_s=timeout_s, log_path=tmp / "atc.log")
        built.append(result)
        atomic_write_text(tmp / "om.json", json.dumps({
            "om": result.om_path.name, "command": list(result.command), "returncode": result.returncode,
            "warnings": [m.describe() for m in result.log.warnings], "duration_s": round(result.duration_s, 3),
        }, indent=2) + "\n")

    entry = cache.get_or_build(CACHE_NAMESPACE, inputs, build)
    meta = json.loads((entry / "om.json").read_text())
    om = entry / meta["om"]
    if not om.is_file():
        raise ToolError(f"cached OM {om} is missing; delete {entry} and rerun")
    return OmArtifact(om, entry, cached=not built, command=tuple(meta["command"]), warnings=tuple(meta["warnings"]))
