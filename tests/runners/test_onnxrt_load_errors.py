"""Issue 12: a model ONNX Runtime cannot load is one line naming the file, not an ORT traceback."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from vnet_accept.errors import UsageError
from vnet_accept.runners.onnxrt import OnnxRuntimeRunner


def _graph(op: str) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("actual_input_1", TensorProto.FLOAT, ["N", 1, 4, 4, 4])
    y = helper.make_tensor_value_info("output1", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node(op, ["actual_input_1"], ["output1"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def test_a_graph_onnx_runtime_refuses_is_named(tmp_path):
    path = tmp_path / "odd.onnx"
    onnx.save(_graph("NoSuchOperator"), str(path))
    with pytest.raises(UsageError, match=rf"ONNX Runtime cannot load ONNX file {path} \(.*\); export it again"):
        OnnxRuntimeRunner(path).activate()


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty"), (b"\x08\x07\x12", "not a readable ONNX")])
def test_an_empty_or_truncated_file_is_named_before_onnx_runtime_sees_it(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        OnnxRuntimeRunner(path).activate()


def test_a_good_model_still_loads(tmp_path):
    path = tmp_path / "ok.onnx"
    onnx.save(_graph("Identity"), str(path))
    runner = OnnxRuntimeRunner(path).activate()
    assert "actual_input_1" in runner.input_metadata()
    runner.deactivate()
