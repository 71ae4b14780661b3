"""Running an external tool: bounded in time, output captured, its whole process tree stopped on time-out.

The CANN tools spawn helpers (ATC runs compilers, ais_bench worker processes), so a time-out must stop the
process group the tool started, not only the tool itself. Output goes to a file rather than a pipe: ATC and
ais_bench can print megabytes (tqdm bars, per-op warnings), and a full pipe would block the tool.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vnet_accept.errors import ToolError

#: Seconds a tool gets to exit after SIGTERM before SIGKILL.
TERMINATE_GRACE_S = 5.0
#: Lines of output quoted in an error.
TAIL_LINES = 20


def tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def shell_join(command: Sequence[str]) -> str:
    """The command as one shell line, for logs and for a user to rerun it."""
    return shlex.join([str(c) for c in command])


@dataclass(frozen=True)
class ProcessResult:
    command: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr, interleaved as the tool wrote them
    duration_s: float
    log_path: Path | None = None

    def tail(self, lines: int = TAIL_LINES) -> str:
        return tail(self.output, lines)

    def describe_exit(self) -> str:
        if self.returncode < 0:
            return f"killed by signal {-self.returncode}"
        return f"exit status {self.returncode}"


class ToolNotRunnable(ToolError):
    """The executable could not be started (missing, not executable)."""


class ToolTimeout(ToolError):
    """The tool ran past its time limit and was stopped; carries the command and the output so far."""

    def __init__(self, tool: str, command: Sequence[str], timeout_s: float, output: str) -> None:
        self.command = tuple(command)
        self.timeout_s = timeout_s
        self.output = output
        shown = tail(output) or "(no output)"
        super().__init__(f"{tool} timed out after {timeout_s:g} s and was stopped; raise the time limit if the "
                         f"machine is slow\ncommand: {shell_join(command)}\noutput tail:\n{shown}")


def run_tool(command: Sequence[str], *, timeout_s: float, tool: str | None = None, cwd: str | Path | None = None,
             env: Mapping[str, str] | None = None, log_path: str | Path | None = None) -> ProcessResult:
    """Run ``command`` to completion or until ``timeout_s``; never raises for a non-zero exit status.

    Raises :class:`ToolNotRunnable` when it cannot start and :class:`ToolTimeout` when it overruns (after
    stopping its process group). ``log_path`` keeps the output on disk as well.
    """
    command = tuple(str(c) for c in command)
    tool = tool or Path(command[0]).name
    start = time.monotonic()
    with _output_file(log_path) as out:
        try:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=dict(env) if env is not None else None, start_new_session=True)
        except FileNotFoundError:
            raise ToolNotRunnable(f"{tool}: cannot run {command[0]!r}: no such file; check the path or PATH") from None
        except PermissionError:
            raise ToolNotRunnable(f"{tool}: cannot run {command[0]!r}: permission denied; make it executable "
                                  f"(chmod +x)") from None
        except OSError as exc:  # e.g. exec format error: a binary for another architecture
            raise ToolNotRunnable(f"{tool}: cannot run {command[0]!r}: {exc.strerror or exc}") from None
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise ToolTimeout(tool, command, timeout_s, _read_back(out)) from None
        except BaseException:
            _stop_group(proc)  # e.g. Ctrl-C: leave no tool running on the device
            raise
        output = _read_back(out)
    return ProcessResult(command, returncode, output, time.monotonic() - start,
                         Path(log_path) if log_path is not None else None)


def _output_file(log_path: str | Path | None):
    if log_path is None:
        return tempfile.TemporaryFile()
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    return open(log_path, "w+b")  # noqa: SIM115 - closed by the caller's with-block


def _read_back(out) -> str:
    out.flush()
    out.seek(0)
    return out.read().decode("utf-8", errors="replace")


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the tool's process group (it leads its own session), then SIGKILL whatever is left of it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # helpers that ignored SIGTERM or outlived the leader
    except ProcessLookupError:
        pass
    proc.wait()
