"""Locations the performance tests read: our own fixtures, and the shared reference transcripts (skipped with a
reason when the shared folder is absent; see the plugin's ``shared_dir`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="session")
def perf_fixtures() -> Path:
    return FIXTURES / "perf"


@pytest.fixture(scope="session")
def transcripts(shared_dir: Path) -> Path:
    folder = shared_dir / "reference" / "transcripts"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent; pass --shared-dir DIR (the folder holding reference/transcripts)")
    return folder


@pytest.fixture(scope="session")
def real_transcripts(transcripts: Path) -> Path:
    folder = transcripts / "real"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent; pass --shared-dir DIR (the folder holding reference/transcripts/real)")
    return folder


@pytest.fixture(scope="session")
def crlf_indented():
    """``crlf_indented(text)``: the same tool output as copied through a Windows editor into a Markdown block."""

    def convert(text: str, indent: str = "    ") -> str:
        return "".join(f"{indent}{line}\r\n" for line in text.splitlines())

    return convert
