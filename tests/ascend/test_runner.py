"""OmRunner behind the runner interface, with stand-ins only: a fake ``ais_bench.infer.interface`` module for the
Python API and a stand-in ``ais_bench`` script for the command line. They check the plumbing (shapes, order,
fp16 outputs, batch size, failures, registration); whether the real ais_bench behaves so needs an Ascend host."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.ascend.runner import OmRunner, decode_output
from vnet_accept.ascend.tools import ToolCommand
from vnet_accept.errors import DataError, ToolError, UsageError
from vnet_accept.runners.registry import create_runner

STANDIN = Path(__file__).resolve().parents[2] / "fixtures" / "ascend" / "standins" / "ais_bench_standin.py"
SAMPLE = (1, 64, 80, 80)


def batch(values) -> np.ndarray:
    return np.stack([np.full(SAMPLE, v, dtype=np.float32) for v in values])


@pytest.fixture
def om(tmp_path) -> Path:
    path = tmp_path / "vnet_bs2.om"
    path.write_bytes(b"OM")
    return path


@pytest.fixture
def fake_api(monkeypatch):
    """``ais_bench.infer.interface.InferSession`` that returns each sample's mean as its output, in float16."""
    calls = {"infer": [], "freed": 0}

    class InferSession:
        def __init__(self, device_id, model_path):
            calls["init"] = (device_id, model_path)

        def get_inputs(self):
            return [types.SimpleNamespace(name="actual_input_1", shape=[2, 1, 64, 80, 80])]

        def infer(self, feeds, mode="static"):
            calls["infer"].append(mode)
            x = feeds[0]
            return [np.broadcast_to(x.mean(axis=(1, 2, 3, 4))[:, None, None, None, None],
                                    (len(x), 64, 80, 80, 2)).astype(np.float16)]

        def free_resource(self):
            calls["freed"] += 1

    for name in ("ais_bench", "ais_bench.infer", "ais_bench.infer.interface"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["ais_bench.infer.interface"].InferSession = InferSession
    return calls


def test_api_path_reads_the_batch_size_and_casts_fp16_up(om, fake_api):
    with OmRunner(om, device_id=3) as runner:
        assert runner.mode == "api" and runner.batch_size == 2 and fake_api["init"] == (3, str(om))
        out = runner.infer({"actual_input_1": batch([1.0, 2.0])})["output1"]
        assert runner.output_dtype == "float16" and runner.describe().endswith("npu:3, via ais_bench api]")
    assert out.dtype == np.float32 and out.shape == (2, 64, 80, 80, 2) and out[1, 0, 0, 0, 0] == 2.0
    assert fake_api["infer"] == ["static"] and fake_api["freed"] == 1
    assert (runner.bn_mode, runner.dtype, runner.device) == (None, "fp16 (ATC force_fp16)", "npu:3")


def test_api_path_checks_the_feed_against_the_om(om, fake_api):
    with OmRunner(om) as runner, pytest.raises(UsageError, match=r"Received shape \(3, 1, 64, 80, 80\)"):
        runner.infer({"actual_input_1": batch([1.0, 2.0, 3.0])})


def test_cli_path_writes_samples_and_reads_outputs_in_order(om, monkeypatch):
    tool = ToolCommand("ais_bench", (sys.executable, str(STANDIN)), "test")
    with OmRunner(om, tool=tool, use_api=False) as runner:
        assert runner.mode == "cli" and runner.batch_size == 2  # from the name vnet_bs2.om
        out = runner.infer({"actual_input_1": batch([5.0, -1.5])})["output1"]
        assert out.shape == (2, 64, 80, 80, 2) and out[0].max() == 5.0 and out[1].min() == -1.5
        monkeypatch.setenv("STANDIN_FP16", "1")
        out = runner.infer({"actual_input_1": batch([0.25, 0.5])})["output1"]
        assert runner.output_dtype == "float16" and out[1, 3, 3, 3, 1] == 0.5
        workdir = runner._workdir
    assert workdir is not None and not workdir.exists()


def test_cli_failures_name_the_problem(om, monkeypatch):
    tool = ToolCommand("ais_bench", (sys.executable, str(STANDIN)), "test")
    with OmRunner(om, tool=tool, use_api=False) as runner:
        monkeypatch.setenv("STANDIN_FAIL", "1")
        with pytest.raises(ToolError, match=r"ais_bench failed \(exit status 3\)\n.*acl open device 0 failed"):
            runner.infer({"actual_input_1": batch([1.0, 2.0])})
        monkeypatch.delenv("STANDIN_FAIL")
        monkeypatch.setenv("STANDIN_NO_OUTPUT", "1")
        with pytest.raises(ToolError, match="exited 0 but wrote no 0_0.bin for sample 0 of 2"):
            runner.infer({"actual_input_1": batch([1.0, 2.0])})


def test_batch_size_unknown_and_missing_om_are_usage_errors(tmp_path):
    tool = ToolCommand("ais_bench", (sys.executable, str(STANDIN)), "test")
    (tmp_path / "vnet.om").write_bytes(b"OM")
    with pytest.raises(UsageError, match="batch size is unknown; pass batch_size"):
        OmRunner(tmp_path / "vnet.om", tool=tool, use_api=False).activate()
    with pytest.raises(UsageError, match="does not exist; convert the ONNX with atc first"):
        OmRunner(tmp_path / "absent_bs1.om", tool=tool, use_api=False).activate()


def test_decode_output_refuses_other_sizes():
    with pytest.raises(DataError, match="3 bytes; 1 output"):
        decode_output(b"abc", 1)


def test_registered_as_om_npu(om):
    runner = create_runner("om-npu", onnx=om, device="npu:1")
    assert isinstance(runner, OmRunner) and runner.device == "npu:1" and not runner.is_active
    assert runner.describe() == "om-npu1 [bn_mode=as compiled, fp16 (ATC force_fp16), npu:1]"
    with pytest.raises(UsageError, match="runs an Ascend OM: pass --onnx vnet_bs16.om"):
        create_runner("om-npu", onnx=om.with_suffix(".onnx"))
