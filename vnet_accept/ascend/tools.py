"""Finding the CANN tools: ``atc``, ``npu-smi``, ``ais_bench`` and the legacy ``benchmark.<arch>`` (issue 5).

Each finder takes the user's explicit choice (a path option) first, then the usual place (PATH, the current
interpreter, the working directory). When a tool is absent it raises :class:`ToolMissing`, whose message names
the tool, where it was looked for, how to provide it, and the alternative of judging results copied from an
Ascend host (``--npu-results DIR``) — a pytest test turns that message into its skip reason unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vnet_accept.errors import ToolError

CANN_HINT = "install the CANN toolkit and `source /usr/local/Ascend/ascend-toolkit/set_env.sh`"
RESULTS_HINT = "or pass --npu-results DIR with results and logs copied from an Ascend host"
#: Where CANN installs by default; used only to sharpen the hint (a toolkit present but not sourced).
CANN_HOMES = ("/usr/local/Ascend/ascend-toolkit/latest", "/usr/local/Ascend/nnae/latest")
AIS_BENCH_MODULE = "ais_bench"
#: Seconds allowed for asking another interpreter whether it can import ais_bench.
_PROBE_TIMEOUT_S = 30.0


class ToolMissing(ToolError):
    """A tool that is not there. ``str()`` is one sentence: what is missing, where we looked, what to do."""

    def __init__(self, tool: str, looked: str, how: str) -> None:
        self.tool = tool
        self.looked = looked
        self.how = how
        super().__init__(f"{tool} not found ({looked}); {how}")


@dataclass(frozen=True)
class ToolCommand:
    """How to start a tool: the argv prefix, and how it was found (for the report)."""

    name: str
    argv: tuple[str, ...]
    found_by: str

    def __call__(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    @property
    def executable(self) -> Path:
        return Path(self.argv[0])


def _cann_hint() -> str:
    for home in CANN_HOMES:
        if Path(home).is_dir() and not os.environ.get("ASCEND_TOOLKIT_HOME"):
            return f"a CANN toolkit is installed at {home} but not set up: `source {Path(home).parent}/set_env.sh`"
    return CANN_HINT


def _explicit_executable(name: str, option: str, value: str | os.PathLike[str]) -> ToolCommand:
    path = Path(value).expanduser()
    if not path.exists():
        resolved = shutil.which(str(value))
        if resolved is None:
            raise ToolMissing(name, f"{option} {value}: no such file", f"check the path given to {option}")
        path = Path(resolved)
    if path.is_dir() or not os.access(path, os.X_OK):
        raise ToolMissing(name, f"{option} {value}: not an executable file", f"point {option} at the {name} binary")
    return ToolCommand(name, (str(path),), option)


def find_executable(name: str, option: str, explicit: str | os.PathLike[str] | None = None,
                    how: str | None = None) -> ToolCommand:
    """``explicit`` (the value of ``option``) if given, else ``name`` on PATH."""
    if explicit:
        return _explicit_executable(name, option, explicit)
    resolved = shutil.which(name)
    if resolved:
        return ToolCommand(name, (resolved,), "PATH")
    raise ToolMissing(name, "not on PATH", how or f"{_cann_hint()}, or pass {option} PATH; {RESULTS_HINT}")


def find_atc(explicit: str | os.PathLike[str] | None = None) -> ToolCommand:
    return find_executable("atc", "--atc", explicit)


def find_npu_smi(explicit: str | os.PathLike[str] | None = None) -> ToolCommand:
    return find_executable("npu-smi", "--npu-smi", explicit, how=(
        "install the Ascend driver (npu-smi comes with it), or pass --soc-version (e.g. Ascend310, Ascend310P3) "
        f"so it is not needed; {RESULTS_HINT}"))


def find_ais_bench(explicit: str | None = None, *, python: str | None = None) -> ToolCommand:
    """``--ais-bench`` may be a command line (``"python3.9 -m ais_bench"``), a Python interpreter, or an executable.

    Without it: ``ais_bench`` importable in this interpreter, else in ``python3`` on PATH.
    """
    if explicit:
        argv = shlex.split(explicit)
        if len(argv) > 1:
            return ToolCommand("ais_bench", tuple(argv), "--ais-bench")
        found = _explicit_executable("ais_bench", "--ais-bench", argv[0])
        if found.executable.name.startswith("python"):
            return ToolCommand("ais_bench", (*found.argv, "-m", AIS_BENCH_MODULE), "--ais-bench (interpreter)")
        return found
    if importlib.util.find_spec(AIS_BENCH_MODULE) is not None:
        return ToolCommand("ais_bench", (sys.executable, "-m", AIS_BENCH_MODULE), f"importable in {sys.executable}")
    other = python or shutil.which("python3")
    if other and Path(other).resolve() != Path(sys.executable).resolve() and _importable_in(other):
        return ToolCommand("ais_bench", (other, "-m", AIS_BENCH_MODULE), f"importable in {other}")
    looked = f"not importable in {sys.executable}" + (f" nor in {other}" if other else "")
    raise ToolMissing("ais_bench", looked, "install the ais_bench and aclruntime wheels (Ascend/tools, "
                      "ais-bench_workload/tool/ais_bench) in the Python that runs it, or pass --ais-bench "
                      f"'PYTHON -m ais_bench', or use the legacy tool with --npu-tool benchmark; {RESULTS_HINT}")


def _importable_in(python: str) -> bool:
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({AIS_BENCH_MODULE!r}) is None)"
    try:
        return subprocess.run([python, "-c", probe], capture_output=True, timeout=_PROBE_TIMEOUT_S).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def legacy_benchmark_name(machine: str | None = None) -> str:
    """``benchmark.x86_64`` or ``benchmark.aarch64`` for this machine (the tool ships one binary per arch)."""
    machine = (machine or platform.machine()).lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}.get(machine)
    if arch is None:
        raise ToolMissing("benchmark", f"no legacy benchmark build for machine {machine!r}",
                          f"use ais_bench (--npu-tool ais_bench); {RESULTS_HINT}")
    return f"benchmark.{arch}"


def find_legacy_benchmark(explicit: str | os.PathLike[str] | None = None, *, machine: str | None = None,
                          search_dirs: Sequence[str | os.PathLike[str]] = (".",)) -> ToolCommand:
    """``--benchmark-tool`` if given, else ``benchmark.<arch>`` on PATH or in ``search_dirs`` (it is usually
    copied next to the data, not installed)."""
    if explicit:
        return _explicit_executable("benchmark", "--benchmark-tool", explicit)
    name = legacy_benchmark_name(machine)
    resolved = shutil.which(name)
    if resolved:
        return ToolCommand("benchmark", (resolved,), "PATH")
    for folder in search_dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return ToolCommand("benchmark", (str(candidate.resolve()),), f"found in {folder}")
    dirs = ", ".join(f"the working directory ({Path(d).resolve()})" if Path(d) == Path(".") else str(d)
                     for d in search_dirs)  # "nor in ." read as a truncated sentence
    raise ToolMissing("benchmark", f"{name} neither on PATH nor in {dirs}",
                      f"pass --benchmark-tool PATH, or use ais_bench (--npu-tool ais_bench); {RESULTS_HINT}")


NPU_TOOLS = ("auto", "ais_bench", "benchmark")


@dataclass
class Toolset:
    """What this machine has. Missing tools are recorded with their reason instead of raising."""

    atc: ToolCommand | None = None
    npu_smi: ToolCommand | None = None
    ais_bench: ToolCommand | None = None
    benchmark: ToolCommand | None = None
    missing: dict[str, ToolMissing] = field(default_factory=dict)

    def require(self, name: str) -> ToolCommand:
        """The tool, or a fresh :class:`ToolMissing` with the reason recorded at detection."""
        tool = getattr(self, name.replace("-", "_"))
        if tool is None:
            why = self.missing[name]
            raise ToolMissing(why.tool, why.looked, why.how)
        return tool

    def inference_tool(self, preference: str = "auto") -> ToolCommand:
        """ais_bench (preferred) or the legacy benchmark, as ``--npu-tool`` says."""
        if preference not in NPU_TOOLS:
            raise ToolError(f"--npu-tool {preference!r}: choose one of {', '.join(NPU_TOOLS)}")
        if preference != "auto":
            return self.require(preference)
        if self.ais_bench is not None:
            return self.ais_bench
        if self.benchmark is not None:
            return self.benchmark
        ais, legacy = self.missing["ais_bench"], self.missing["benchmark"]
        raise ToolMissing("an NPU inference tool", f"ais_bench {ais.looked}; benchmark: {legacy.looked}",
                          "install ais_bench or pass --ais-bench 'PYTHON -m ais_bench', or pass --benchmark-tool "
                          f"PATH for the legacy tool; {RESULTS_HINT}")


def detect_tools(*, atc: str | None = None, npu_smi: str | None = None, ais_bench: str | None = None,
                 benchmark: str | None = None, search_dirs: Sequence[str | os.PathLike[str]] = (".",)) -> Toolset:
    toolset = Toolset()
    finders = {
        "atc": lambda: find_atc(atc),
        "npu-smi": lambda: find_npu_smi(npu_smi),
        "ais_bench": lambda: find_ais_bench(ais_bench),
        "benchmark": lambda: find_legacy_benchmark(benchmark, search_dirs=search_dirs),
    }
    for name, find in finders.items():
        try:
            setattr(toolset, name.replace("-", "_"), find())
        except ToolMissing as exc:
            toolset.missing[name] = exc
    return toolset
