"""The port's T4 baseline command, run on this machine's GPU: ``trtexec`` per batch size, parsed (issue 6).

``trtexec --onnx=vnet.onnx --fp16 --shapes=actual_input_1:Bx1x64x80x80 --threads`` is the command the port printed
for its T4 table (SPEC §5). Run where ``trtexec`` is on PATH, it re-measures the T4-class TensorRT baseline on the
user's own card; the log is kept and read with the project's trtexec parser
(:func:`vnet_accept.perf.parsers.parse_perf_text`), with the port's statistic (median at bs1, mean elsewhere).
Success is the exit status *and* a parsable GPU Compute summary.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.reference import ONNX_INPUT_NAME, T4_FPS


def error_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters), for a row or run that failed."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def trtexec_command(onnx_path: str | Path, batch_size: int, trtexec: str = "trtexec",
                    spatial: tuple[int, int, int] = TILE_SHAPE) -> list[str]:
    """``trtexec --onnx=PATH --fp16 --shapes=actual_input_1:Bx1x64x80x80 --threads`` — the port's command."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    shape = "x".join(map(str, (batch_size, 1, *spatial)))
    return [trtexec, f"--onnx={onnx_path}", "--fp16", f"--shapes={ONNX_INPUT_NAME}:{shape}", "--threads"]


@dataclass
class TrtexecRun:
    batch_size: int
    command: list[str]
    returncode: int | None
    log_path: str | None
    seconds: float
    measurement: Any = None  # vnet_accept.perf.measurement.PerfMeasurement
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.measurement is not None

    @property
    def x_t4(self) -> float | None:
        ref = T4_FPS.get(self.batch_size)
        return self.measurement.fps / ref if self.ok and ref else None

    def describe(self) -> str:
        if not self.ok:
            return f"trtexec bs{self.batch_size}: FAILED ({self.error}); log {self.log_path}"
        m = self.measurement
        return (f"trtexec bs{self.batch_size}: {m.fps:.2f} fps ({m.metric}) = {self.x_t4:.2f}× the T4 threshold "
                f"{T4_FPS.get(self.batch_size)} on {m.device_name or 'this GPU'}; log {self.log_path}")

    def to_dict(self) -> dict[str, Any]:
        m = self.measurement
        return {"batch_size": self.batch_size, "command": self.command, "returncode": self.returncode,
                "log": self.log_path, "seconds": self.seconds, "error": self.error,
                "fps": m.fps if m else None, "basis": m.basis if m else None,
                "alternatives": dict(m.alternatives) if m else None, "device": m.device_name if m else None,
                "tool_version": m.tool_version if m else None, "warnings": list(m.warnings) if m else [],
                "x_t4": self.x_t4}


def find_trtexec(explicit: str | None = None) -> str | None:
    return explicit if explicit else shutil.which("trtexec")


def run_trtexec(onnx_path: str | Path, batch_sizes: Sequence[int], out_dir: str | Path,
                trtexec: str = "trtexec", timeout_s: float = 1800.0,
                run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[TrtexecRun]:
    """Run the port's T4 command per batch size; keep each log as ``trtexec_bs<N>.log`` and parse it.

    Success is the exit status *and* a parsable GPU Compute summary; either missing is recorded as the error.
    """
    from vnet_accept.perf.measurement import PerfFileError
    from vnet_accept.perf.parsers import parse_perf_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for bs in batch_sizes:
        cmd = trtexec_command(onnx_path, bs, trtexec)
        log_path = out / f"trtexec_bs{bs}.log"
        start = time.perf_counter()
        try:
            proc = run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout_s,
                       check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            runs.append(TrtexecRun(bs, cmd, None, None, time.perf_counter() - start, error=error_line(exc)))
            continue
        text = proc.stdout or ""
        log_path.write_text(text)
        entry = TrtexecRun(bs, cmd, proc.returncode, str(log_path), time.perf_counter() - start)
        if proc.returncode != 0:
            tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["no output"]
            entry.error = f"exit status {proc.returncode}: {tail[0][:200]}"
        else:
            try:
                (entry.measurement,) = parse_perf_text(text, str(log_path), statistic="port",
                                                       batch_size=bs).measurements
            except PerfFileError as exc:
                entry.error = str(exc)
        runs.append(entry)
    return runs
