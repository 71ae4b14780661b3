"""Running a tool: exit statuses, time-outs that stop the whole process group, tools that cannot start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vnet_accept.ascend.process import ProcessResult, ToolNotRunnable, ToolTimeout, run_tool, tail


def _running(pid: int) -> bool:
    """Alive and not a zombie (a reparented child may wait for its reaper)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_output_and_exit_status_are_captured(stand_in, tmp_path):
    tool = stand_in("atc", output="line one\r\nline two\n", exit_code=3)
    result = run_tool([str(tool.path), "--x=1"], timeout_s=30, log_path=tmp_path / "logs" / "atc.log")
    assert isinstance(result, ProcessResult)
    assert (result.returncode, result.describe_exit()) == (3, "exit status 3")
    assert "line two" in result.output and result.tail(1) == "line two"
    assert (tmp_path / "logs" / "atc.log").read_bytes().decode() == result.output
    assert tool.calls == [["--x=1"]]


def test_time_out_stops_the_tool_and_its_children(stand_in, tmp_path):
    pid_file = tmp_path / "child.pid"
    tool = stand_in("ais_bench", output="[INFO] acl init success\n", sleep=60, spawn_child=str(pid_file))
    start = time.monotonic()
    with pytest.raises(ToolTimeout) as info:
        run_tool([str(tool.path)], timeout_s=0.5, tool="ais_bench")
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert message.startswith("ais_bench timed out after 0.5 s and was stopped")
    assert "acl init success" in message and info.value.timeout_s == 0.5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child), "a helper the tool started survived the time-out"


def test_missing_and_non_executable_tools(tmp_path):
    with pytest.raises(ToolNotRunnable, match="no such file"):
        run_tool([str(tmp_path / "atc")], timeout_s=5, tool="atc")
    script = tmp_path / "benchmark.x86_64"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(ToolNotRunnable, match="permission denied.*chmod"):
        run_tool([str(script)], timeout_s=5)


def test_binary_for_another_architecture(tmp_path):
    fake = tmp_path / "benchmark.aarch64"
    fake.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 200)
    fake.chmod(0o755)
    with pytest.raises(ToolNotRunnable, match="cannot run"):
        run_tool([str(fake)], timeout_s=5)


def test_killed_by_a_signal(tmp_path):
    script = tmp_path / "crash"
    script.write_text("#!/bin/sh\nkill -SEGV $$\n")
    script.chmod(0o755)
    assert run_tool([str(script)], timeout_s=10).describe_exit() == "killed by signal 11"


def test_garbage_output_is_kept_as_text(tmp_path):
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 4)
    script = tmp_path / "noisy"
    script.write_text(f"#!/bin/sh\ncat {noise}\nexit 0\n")
    script.chmod(0o755)
    result = run_tool([str(script)], timeout_s=10)
    assert result.returncode == 0 and "\ufffd" in result.output


def test_tail_keeps_the_last_non_blank_lines():
    assert tail("a\n\nb\n  \nc\n", 2) == "b\nc"
