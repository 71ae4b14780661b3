"""Stand-in executables for the CANN tools: small shell scripts that replay a recorded output and exit status,
and optionally write the files the real tool would (an OM, result files). They exercise process handling —
exit codes, time-outs, missing outputs, garbage — and say nothing about NPU correctness."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

#: Separates arguments in the calls record (no argument of ours contains it).
ARG_SEPARATOR = "\x1f"


class StandIn:
    """A stand-in executable and the record of how it was called."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls_file = path.with_suffix(".calls")

    @property
    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [line.split(ARG_SEPARATOR)[:-1] for line in self.calls_file.read_text().splitlines()]


def _script(calls: Path, output: Path | None, exit_code: int, sleep: float, om_suffix: str | None,
            writes: dict[str, Path], spawn_child: str | None) -> str:
    # POSIX sh, not Python: a stand-in starts in milliseconds, which keeps these tests fast.
    q = shlex.quote
    lines = ["#!/bin/sh", f"for a in \"$@\"; do printf '%s\\037' \"$a\"; done >> {q(str(calls))}",
             f"printf '\\n' >> {q(str(calls))}"]
    if spawn_child:
        lines.append(f"sleep 60 & echo $! > {q(spawn_child)}")
    if output is not None:
        lines.append(f"cat {q(str(output))}")
    if om_suffix is not None:
        lines += ["for a in \"$@\"; do case \"$a\" in",
                  f"  --output=*) printf OM > \"${{a#--output=}}\"{q(om_suffix)} ;;", "esac; done"]
    for target, source in writes.items():
        lines += [f"mkdir -p {q(str(Path(target).parent))}", f"cp {q(str(source))} {q(target)}"]
    if sleep:
        lines.append(f"sleep {sleep}")
    lines.append(f"exit {exit_code}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def stand_in(tmp_path: Path) -> Callable[..., StandIn]:
    """``stand_in(name, output=None, exit_code=0, *, sleep=0, om_suffix=None, writes=None, spawn_child=None)``.

    ``output`` is a file whose bytes the stand-in prints (CRLF and all) or a string. ``om_suffix`` makes it write
    ``<--output value><suffix>`` as ATC does; ``writes`` is ``{path: text}`` for result files; ``spawn_child`` a
    pid file for a helper process it starts (to test that a time-out stops the whole process group).
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)

    def make(name: str, output: str | Path | None = None, exit_code: int = 0, *, sleep: float = 0,
             om_suffix: str | None = None, writes: dict[str, str] | None = None,
             spawn_child: str | None = None) -> StandIn:
        path = bin_dir / name
        if isinstance(output, str):
            text_file = bin_dir / f"{name}.out"
            text_file.write_bytes(output.encode())
            output = text_file
        sources = {}
        for i, (target, text) in enumerate((writes or {}).items()):
            sources[str(target)] = bin_dir / f"{name}.write{i}"
            sources[str(target)].write_text(text)
        path.write_text(_script(path.with_suffix(".calls"), output, exit_code, sleep, om_suffix, sources,
                                spawn_child))
        path.chmod(0o755)
        return StandIn(path)

    return make


@pytest.fixture
def ascend_fixtures() -> Path:
    return FIXTURES / "ascend"


@pytest.fixture
def real_transcripts(shared_dir: Path) -> Path:
    folder = shared_dir / "reference" / "transcripts" / "real"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent; pass --shared-dir DIR (the folder holding reference/transcripts/real)")
    return folder


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH pointing at an empty folder: no CANN tool can be found there."""
    folder = tmp_path / "empty-path"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("ASCEND_TOOLKIT_HOME", raising=False)
    return folder

