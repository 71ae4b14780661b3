"""Tool detection: explicit paths first, then PATH / the interpreter / the working directory; every absence
is a message naming the tool, where it was looked for, and what to do (including --npu-results)."""

from __future__ import annotations

import re
import sys

import pytest

from vnet_accept.ascend import tools
from vnet_accept.ascend.tools import (
    ToolMissing,
    detect_tools,
    find_ais_bench,
    find_atc,
    find_legacy_benchmark,
    find_npu_smi,
    legacy_benchmark_name,
)
from vnet_accept.errors import ToolError


def test_explicit_path_wins(stand_in, empty_path):
    atc = stand_in("atc")
    found = find_atc(atc.path)
    assert (found.argv, found.found_by) == ((str(atc.path),), "--atc")
    assert found("--version") == [str(atc.path), "--version"]


def test_explicit_path_that_is_wrong(tmp_path, empty_path):
    with pytest.raises(ToolMissing, match=r"--atc .*/nope: no such file"):
        find_atc(tmp_path / "nope")
    plain = tmp_path / "atc"
    plain.write_text("not executable")
    with pytest.raises(ToolMissing, match="not an executable file"):
        find_atc(plain)


def test_found_on_path(stand_in, monkeypatch):
    atc = stand_in("atc")
    monkeypatch.setenv("PATH", str(atc.path.parent))
    assert find_atc().found_by == "PATH"


def test_absent_tools_say_how_to_provide_them(empty_path, monkeypatch):
    monkeypatch.setattr(tools, "CANN_HOMES", ())
    message = str(pytest.raises(ToolMissing, find_atc).value)
    assert message.startswith("atc not found (not on PATH)")
    assert "set_env.sh" in message and "--atc PATH" in message and "--npu-results DIR" in message
    assert "--soc-version" in str(pytest.raises(ToolMissing, find_npu_smi).value)


def test_installed_but_not_sourced_cann_is_pointed_out(empty_path, tmp_path, monkeypatch):
    home = tmp_path / "Ascend" / "ascend-toolkit" / "latest"
    home.mkdir(parents=True)
    monkeypatch.setattr(tools, "CANN_HOMES", (str(home),))
    assert f"source {home.parent}/set_env.sh" in str(pytest.raises(ToolMissing, find_atc).value)


def test_ais_bench_as_a_command_or_an_interpreter(stand_in, empty_path):
    assert find_ais_bench("python3.9 -m ais_bench").argv == ("python3.9", "-m", "ais_bench")
    python = stand_in("python3.9")
    assert find_ais_bench(str(python.path)).argv == (str(python.path), "-m", "ais_bench")
    script = stand_in("ais_bench_wrapper")
    assert find_ais_bench(str(script.path)).argv == (str(script.path),)


def test_ais_bench_importable_in_another_python(tmp_path, empty_path, monkeypatch):
    monkeypatch.setattr(tools.importlib.util, "find_spec", lambda name: None)
    package = tmp_path / "site" / "ais_bench"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    other = tmp_path / "python3"
    other.write_text(f"#!/bin/sh\nPYTHONPATH={package.parent} exec {sys.executable} \"$@\"\n")
    other.chmod(0o755)
    found = find_ais_bench(python=str(other))
    assert found.argv == (str(other), "-m", "ais_bench") and found.found_by == f"importable in {other}"


def test_ais_bench_absent(tmp_path, empty_path, monkeypatch):
    monkeypatch.setattr(tools.importlib.util, "find_spec", lambda name: None)
    message = str(pytest.raises(ToolMissing, find_ais_bench, python=sys.executable).value)
    assert message.startswith("ais_bench not found (not importable in")
    assert "--ais-bench" in message and "--npu-tool benchmark" in message and "--npu-results" in message


@pytest.mark.parametrize("machine, name", [("x86_64", "benchmark.x86_64"), ("AMD64", "benchmark.x86_64"),
                                           ("aarch64", "benchmark.aarch64"), ("arm64", "benchmark.aarch64")])
def test_legacy_binary_name(machine, name):
    assert legacy_benchmark_name(machine) == name


def test_legacy_tool_for_an_unsupported_machine():
    with pytest.raises(ToolMissing, match="no legacy benchmark build for machine 'ppc64le'"):
        legacy_benchmark_name("ppc64le")


def test_legacy_tool_in_the_working_directory(stand_in, empty_path, tmp_path, monkeypatch):
    tool = stand_in("benchmark.aarch64")
    found = find_legacy_benchmark(machine="aarch64", search_dirs=(tool.path.parent,))
    assert found.argv == (str(tool.path.resolve()),)
    with pytest.raises(ToolMissing, match="benchmark.x86_64 neither on PATH nor in"):
        find_legacy_benchmark(machine="x86_64", search_dirs=(tmp_path,))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ToolMissing, match=rf"nor in the working directory \({re.escape(str(tmp_path.resolve()))}\)"):
        find_legacy_benchmark(machine="x86_64")


def test_toolset_records_absences_and_picks_the_inference_tool(stand_in, empty_path, monkeypatch):
    monkeypatch.setattr(tools.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(tools, "_importable_in", lambda python: False)
    toolset = detect_tools(search_dirs=())
    assert set(toolset.missing) == {"atc", "npu-smi", "ais_bench", "benchmark"}
    with pytest.raises(ToolMissing, match="^atc not found"):
        toolset.require("atc")
    with pytest.raises(ToolMissing, match="an NPU inference tool not found"):
        toolset.inference_tool()
    with pytest.raises(ToolError, match="--npu-tool 'trt'"):
        toolset.inference_tool("trt")
    legacy = stand_in("benchmark.x86_64")
    with_legacy = detect_tools(benchmark=str(legacy.path))
    assert with_legacy.inference_tool().name == "benchmark"
    with pytest.raises(ToolMissing, match="^ais_bench not found"):
        with_legacy.inference_tool("ais_bench")
    both = detect_tools(benchmark=str(legacy.path), ais_bench="python3 -m ais_bench")
    assert both.inference_tool().name == "ais_bench"  # preferred
