"""The port's T4 command through ``trtexec`` (vnet_accept.gpu.trtexec), with a stand-in script on PATH that checks
the command line and replays recorded logs (fixtures/gpu/), including the port's own T4 blocks from the shared
reference transcripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vnet_accept.gpu.trtexec import find_trtexec, run_trtexec, trtexec_command
from vnet_accept.reference import T4_FPS

STANDIN = Path(__file__).resolve().parents[2] / "fixtures" / "gpu" / "trtexec_standin.py"


def test_trtexec_command_is_the_ports_t4_command():
    assert trtexec_command("vnet.onnx", 16) == [
        "trtexec", "--onnx=vnet.onnx", "--fp16", "--shapes=actual_input_1:16x1x64x80x80", "--threads"]
    with pytest.raises(ValueError):
        trtexec_command("vnet.onnx", 0)


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """``trtexec`` on PATH is the stand-in script; returns (onnx file, calls log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "trtexec"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("TRTEXEC_STANDIN_CALLS", str(calls))
    onnx = tmp_path / "vnet.onnx"
    onnx.write_bytes(b"not parsed by the stand-in")
    return onnx, calls


def test_trtexec_on_path_is_run_and_its_log_parsed(standin, tmp_path):
    onnx, calls = standin
    exe = find_trtexec()
    assert exe is not None and Path(exe).name == "trtexec"
    runs = run_trtexec(onnx, (1, 16), tmp_path / "out", trtexec=exe)
    assert [r.ok for r in runs] == [True, True], [r.error for r in runs]
    assert calls.read_text().splitlines()[1] == (
        f"--onnx={onnx} --fp16 --shapes=actual_input_1:16x1x64x80x80 --threads")
    bs1, bs16 = (r.measurement for r in runs)
    assert bs1.basis == "median" and bs1.fps == pytest.approx(1000 / 2.5952)  # the port's basis at bs1
    assert bs16.basis == "mean" and bs16.fps == pytest.approx(16000 / 25.302)
    assert (bs16.device_name, bs16.tool_version, bs16.batch_size) == ("NVIDIA H100 80GB HBM3", "10.16.1", 16)
    assert runs[1].x_t4 == pytest.approx(16000 / 25.302 / T4_FPS[16])
    assert (tmp_path / "out" / "trtexec_bs16.log").read_text().startswith("&&&& RUNNING TensorRT.trtexec")
    doc = runs[0].to_dict()
    assert doc["returncode"] == 0 and any("not a T4" in w for w in doc["warnings"])


@pytest.mark.parametrize("batch_size", sorted(T4_FPS))
def test_replaying_the_ports_t4_logs_reproduces_the_t4_thresholds(standin, tmp_path, shared_dir, monkeypatch,
                                                                   batch_size):
    onnx, _ = standin
    log = shared_dir / "reference" / "transcripts" / "trtexec_t4_bs{bs}.log"
    if not Path(str(log).replace("{bs}", str(batch_size))).is_file():
        pytest.skip(f"{log} is absent; pass --shared-dir DIR (the folder holding reference/transcripts)")
    monkeypatch.setenv("TRTEXEC_STANDIN_LOG", str(log))
    (run,) = run_trtexec(onnx, (batch_size,), tmp_path, trtexec="trtexec")
    assert run.ok, run.error
    assert round(run.measurement.fps, 5) == T4_FPS[batch_size]
    assert run.x_t4 == pytest.approx(1.0, abs=1e-6)


def test_a_failing_trtexec_is_recorded_with_its_exit_status(standin, tmp_path, monkeypatch):
    onnx, _ = standin
    monkeypatch.setenv("TRTEXEC_STANDIN_EXIT", "3")
    monkeypatch.setenv("TRTEXEC_STANDIN_ERROR", "[E] Error[2]: [network.cpp::addConvolutionNd] unsupported")
    (run,) = run_trtexec(onnx, (1,), tmp_path, trtexec="trtexec")
    assert not run.ok and run.returncode == 3
    assert run.error.startswith("exit status 3: &&&& FAILED TensorRT.trtexec")
    assert "unsupported" in (tmp_path / "trtexec_bs1.log").read_text()
    assert "FAILED" in run.describe()


def test_a_successful_exit_without_a_summary_is_not_a_measurement(standin, tmp_path, monkeypatch):
    onnx, _ = standin
    empty = tmp_path / "build_only.log"
    empty.write_text("[I] Engine built in 41.2 sec.\n")
    monkeypatch.setenv("TRTEXEC_STANDIN_LOG", str(empty))
    (run,) = run_trtexec(onnx, (1,), tmp_path / "out", trtexec="trtexec")
    assert run.returncode == 0 and not run.ok
    assert "without a GPU Compute summary" in run.error


def test_a_missing_trtexec_binary_is_an_error_not_a_crash(tmp_path):
    (run,) = run_trtexec(tmp_path / "vnet.onnx", (1,), tmp_path, trtexec=str(tmp_path / "no-such-trtexec"))
    assert not run.ok and run.returncode is None and run.error.startswith("FileNotFoundError")
