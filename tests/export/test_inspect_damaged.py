"""Issue 12: ``inspect`` never describes a damaged file as a model, and reports metadata the graph contradicts."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from vnet_accept.errors import UsageError
from vnet_accept.export.inspect import inspect_onnx, load_onnx_checked


def _model(opset: int = 11, metadata: dict[str, str] | None = None, drop_initializer: bool = False) -> bytes:
    import numpy as np

    x = helper.make_tensor_value_info("actual_input_1", TensorProto.FLOAT, ["N", 1, 8, 8, 8])
    y = helper.make_tensor_value_info("output1", TensorProto.FLOAT, None)
    weight = numpy_helper.from_array(np.ones((4, 1, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["actual_input_1", "w"], ["output1"], pads=[1] * 6)
    graph = helper.make_graph([node], "g", [x], [y], initializer=[] if drop_initializer else [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty (0 bytes)"),
    (b"hello, I am text\n", "not a readable ONNX model"),
    (_model()[:-9], "not a readable ONNX model|is damaged|not an ONNX model"),
    (_model(drop_initializer=True), "is damaged: its graph uses 1 tensor(s) that nothing defines (e.g. 'w')"),
    (onnx.ModelProto(ir_version=8).SerializeToString(), "is not an ONNX model (no IR version, opset or graph"),
])
def test_empty_truncated_or_foreign_files_are_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        inspect_onnx(path)
    assert str(path) in str(caught.value)
    assert any(part in str(caught.value) for part in message.split("|")), str(caught.value)


def test_a_folder_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(UsageError, match="is a folder"):
        load_onnx_checked(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        load_onnx_checked(tmp_path / "none.onnx")


def test_metadata_the_graph_contradicts_is_reported(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(_model(opset=13, metadata={"vnet_accept.opset": "11", "vnet_accept.width": "16"}))
    info = inspect_onnx(path)
    assert info.opset == 13
    assert any("metadata says opset 11 (vnet_accept.opset) but the graph imports opset 13" in w for w in info.warnings)
    assert any("metadata says width 16" in w and "4 output channels" in w for w in info.warnings)
    assert "WARNING: metadata says opset 11" in info.render()
    path.write_bytes(_model(opset=11, metadata={"vnet_accept.opset": "11", "vnet_accept.width": "4"}))
    assert inspect_onnx(path).warnings == ()
