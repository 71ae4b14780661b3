"""Unit tests for vnet_accept.runners.onnxrt with tiny ONNX graphs built in the test (no VNet export needed)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from vnet_accept.errors import UsageError
from vnet_accept.results.inference import run_in_batches
from vnet_accept.runners.base import InputMismatch, TensorSpec
from vnet_accept.runners.onnxrt import OnnxRuntimeRunner

SPATIAL = (2, 2, 2)


def _doubling_model(batch: int | str | None = "N", elem_type: int = TensorProto.FLOAT,
                    metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """actual_input_1 (batch, 1, 2, 2, 2) -> output1 = 2 * actual_input_1 (same shape)."""
    x = helper.make_tensor_value_info("actual_input_1", elem_type, [batch, 1, *SPATIAL])
    y = helper.make_tensor_value_info("output1", elem_type, [batch, 1, *SPATIAL])
    np_type = helper.tensor_dtype_to_np_dtype(elem_type)
    two = numpy_helper.from_array(np.array(2, dtype=np_type), "two")
    graph = helper.make_graph([helper.make_node("Mul", ["actual_input_1", "two"], ["output1"])], "double", [x], [y],
                              initializer=[two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def _x(n: int, dtype=np.float32) -> np.ndarray:
    return np.arange(n * 8, dtype=dtype).reshape(n, 1, *SPATIAL)


def test_metadata_reports_a_dynamic_batch_as_none():
    with OnnxRuntimeRunner(_doubling_model("N").SerializeToString(), threads=1) as runner:
        assert runner.input_metadata() == {"actual_input_1": TensorSpec(np.dtype(np.float32), (None, 1, 2, 2, 2))}


def test_metadata_reports_an_unnamed_dynamic_axis_as_none_and_a_fixed_batch_as_its_size():
    with OnnxRuntimeRunner(_doubling_model(None).SerializeToString(), threads=1) as runner:
        assert runner.input_metadata()["actual_input_1"].shape == (None, 1, 2, 2, 2)
    with OnnxRuntimeRunner(_doubling_model(3).SerializeToString(), threads=1) as runner:
        assert runner.input_metadata()["actual_input_1"].shape == (3, 1, 2, 2, 2)
        with pytest.raises(InputMismatch, match=r"Received shape \(2, 1, 2, 2, 2\) \| Expected \(3, 1, 2, 2, 2\)"):
            runner.infer({"actual_input_1": _x(2)})


@pytest.mark.parametrize(("elem_type", "dtype"), [(TensorProto.FLOAT16, np.float16), (TensorProto.DOUBLE, np.float64),
                                                  (TensorProto.INT64, np.int64), (TensorProto.INT32, np.int32)],
                         ids=["fp16", "fp64", "int64", "int32"])
def test_metadata_reports_the_input_dtype_of_the_graph(elem_type, dtype):
    with OnnxRuntimeRunner(_doubling_model(elem_type=elem_type).SerializeToString(), threads=1) as runner:
        assert runner.input_metadata()["actual_input_1"].dtype == np.dtype(dtype)
        out = runner.infer({"actual_input_1": _x(1, dtype)})
    np.testing.assert_array_equal(out["output1"], 2 * _x(1, dtype))


def test_an_input_type_without_a_numpy_equivalent_is_refused_with_a_clear_message():
    x = helper.make_tensor_value_info("actual_input_1", TensorProto.BFLOAT16, ["N", 1, *SPATIAL])
    y = helper.make_tensor_value_info("output1", TensorProto.BFLOAT16, ["N", 1, *SPATIAL])
    graph = helper.make_graph([helper.make_node("Identity", ["actual_input_1"], ["output1"])], "same", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    with OnnxRuntimeRunner(model.SerializeToString(), threads=1) as runner:
        with pytest.raises(UsageError, match=r"actual_input_1 has ONNX type tensor\(bfloat16\)"):
            runner.input_metadata()


def test_infer_runs_the_graph_and_returns_outputs_by_name(tmp_path):
    path = tmp_path / "double.onnx"
    onnx.save(_doubling_model(), path)
    with OnnxRuntimeRunner(path, threads=1) as runner:
        out = runner.infer({"actual_input_1": _x(2)})
        assert list(out) == ["output1"]
        np.testing.assert_array_equal(out["output1"], 2 * _x(2))
        assert len(runner.inference_times_s) == 1
    assert runner.session is None and not runner.is_active


def test_infer_rejects_a_float64_feed_before_onnxruntime_sees_it():
    with OnnxRuntimeRunner(_doubling_model().SerializeToString(), threads=1) as runner:
        with pytest.raises(InputMismatch, match="actual_input_1.*Received dtype float64.*Expected float32"):
            runner.infer({"actual_input_1": _x(1, np.float64)})
        assert runner.inference_times_s == []


def test_run_in_batches_through_onnxruntime_matches_one_big_batch():
    with OnnxRuntimeRunner(_doubling_model().SerializeToString(), threads=1) as runner:
        out = run_in_batches(runner, _x(5), 2, output_name="output1")
        assert len(runner.inference_times_s) == 3
    np.testing.assert_array_equal(out, 2 * _x(5))


def test_name_and_device_default_to_the_cpu_provider():
    runner = OnnxRuntimeRunner(_doubling_model().SerializeToString())
    assert (runner.name, runner.device, runner.dtype, runner.backend) == ("onnxrt-cpu", "cpu", "fp32", "onnxrt")
    assert runner.describe() == "onnxrt-cpu [bn_mode=as compiled, fp32, cpu]"


def test_bn_mode_comes_from_our_export_metadata_when_loading_a_file(tmp_path):
    path = tmp_path / "tagged.onnx"
    onnx.save(_doubling_model(metadata={"vnet_accept.bn_mode": "instance"}), path)
    assert OnnxRuntimeRunner(path).bn_mode == "instance"
    assert OnnxRuntimeRunner(path, bn_mode="running").bn_mode == "running"  # explicit wins


def test_bn_mode_is_unknown_for_bytes_and_for_a_graph_without_normalisation(tmp_path):
    model = _doubling_model()
    assert OnnxRuntimeRunner(model.SerializeToString()).bn_mode is None
    path = tmp_path / "plain.onnx"
    onnx.save(model, path)
    assert OnnxRuntimeRunner(path).bn_mode is None


def test_a_missing_model_file_fails_at_activate_not_at_construction(tmp_path):
    runner = OnnxRuntimeRunner(tmp_path / "absent.onnx")
    assert not runner.is_active
    with pytest.raises(Exception, match="absent.onnx"):
        runner.activate()
    assert not runner.is_active


def test_a_process_pinned_to_fewer_cpus_gets_that_many_intra_op_threads(monkeypatch):
    """ONNX Runtime's default ignores the affinity mask (2 threads under ``taskset -c 0`` on 2 cores, measured)."""
    model = _doubling_model().SerializeToString()
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    with OnnxRuntimeRunner(model) as runner:
        assert runner.session.get_session_options().intra_op_num_threads == 1
    with OnnxRuntimeRunner(model, threads=3) as runner:  # asked for: as asked
        assert runner.session.get_session_options().intra_op_num_threads == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    with OnnxRuntimeRunner(model) as runner:  # every CPU: ONNX Runtime's own default (0)
        assert runner.session.get_session_options().intra_op_num_threads == 0
