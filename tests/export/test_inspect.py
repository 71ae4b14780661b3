"""Inspection reports BN semantics from the graph, for our exports and for the port's way of exporting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vnet_accept.cli import main
from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.errors import UsageError
from vnet_accept.export.inspect import inspect_onnx
from vnet_accept.export.onnx_export import ExportOptions, export_onnx, state_dict_hash
from vnet_accept.export.port_style import export_port_style
from vnet_accept.model.checkpoint import normalise_checkpoint, random_state_dict, save_checkpoint
from vnet_accept.results.inference import run_in_batches
from vnet_accept.runners.onnxrt import OnnxRuntimeRunner


@pytest.fixture(scope="module")
def narrow():
    return normalise_checkpoint(random_state_dict(seed=12, width=4))


def test_port_style_export_is_batch_dependent_and_mutates_the_model(narrow, tmp_path):
    model = narrow.build_model()
    before = state_dict_hash(model)
    path = export_port_style(model, tmp_path / "port.onnx", spatial=None, mutate_given_model=True)
    assert state_dict_hash(model) != before  # the tracing pass updated the running statistics
    info = inspect_onnx(path)
    assert info.bn.semantics == "batch" and info.bn.batch_dependent
    assert "depends on the other tiles" in info.bn.explanation
    x = ct_like_batch(4, (16, 32, 32), seed=3)
    with OnnxRuntimeRunner(path) as runner:
        assert np.abs(run_in_batches(runner, x, 4) - run_in_batches(runner, x, 1)).max() > 1e-3


def test_port_style_export_without_mutation_flag_keeps_the_model(narrow, tmp_path):
    model = narrow.build_model()
    before = state_dict_hash(model)
    export_port_style(model, tmp_path / "port.onnx", spatial=None)
    assert state_dict_hash(model) == before


def test_metadata_disagreeing_with_graph_is_warned(narrow, tmp_path):
    path = export_onnx(narrow.build_model(), tmp_path / "v.onnx", ExportOptions("batch", spatial=None),
                       extra_metadata={"bn_mode": "running"})  # a lie in the metadata
    info = inspect_onnx(path)
    assert info.bn.semantics == "batch"
    assert any("metadata says bn_mode=running but the graph implements batch" in w for w in info.warnings)


@pytest.mark.parametrize("content, message", [(b"", "is empty"),
                                              (b"\x08\x07garbage", "not a readable ONNX model")])
def test_unreadable_files_give_a_usage_error(content, message, tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):  # an empty file is never described as a model (issue 12)
        inspect_onnx(path)


def test_cli_checkpoint_export_inspect_round_trip(tmp_path, capsys):
    weights = tmp_path / "w.pth.tar"
    save_checkpoint(weights, random_state_dict(seed=1, width=4), layout="port")
    assert main(["checkpoint", "info", str(weights)]) == 0
    assert "layout port, width 4" in capsys.readouterr().out
    onnx_path = tmp_path / "v.onnx"
    assert main(["export", "--weights", str(weights), "--bn-mode", "instance", "--dynamic-spatial",
                 "-o", str(onnx_path)]) == 0
    assert "batch-invariant" in capsys.readouterr().out
    # Dynamic spatial axes are not the port's contract (ATC gets 64x80x80): inspect says so and exits 1.
    assert main(["inspect", str(onnx_path), "--json", "--bn-mode", "instance"]) == 1
    info = json.loads(capsys.readouterr().out)
    assert info["bn"]["semantics"] == "instance"
    assert info["metadata"]["vnet_accept.bn_mode"] == "instance"
    contract, semantics = info["criteria"]
    assert contract["id"] == "export.contract" and contract["verdict"] == "fail" and "inputs: got" in contract["reason"]
    assert semantics["id"] == "export.bn_semantics" and semantics["verdict"] == "pass"


def test_cli_reports_bad_weights_in_one_line(tmp_path, capsys):
    bad = tmp_path / "w.pth.tar"
    bad.write_bytes(b"xx")
    assert main(["export", "--weights", str(bad), "-o", str(tmp_path / "v.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "w.pth.tar cannot be read" in err
    assert not (tmp_path / "v.onnx").exists()


def test_shared_running_stats_in_a_foreign_export_are_warned(tmp_path):
    """Two training-form BN nodes reading one running-mean tensor (as after initializer de-duplication):
    inspect must warn that ONNX Runtime's in-place update corrupts the other reader."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = 2
    inits = [numpy_helper.from_array(np.ones(c, np.float32), "scale"),
             numpy_helper.from_array(np.zeros(c, np.float32), "zeros"),
             numpy_helper.from_array(np.ones(c, np.float32), "var_a"),
             numpy_helper.from_array(np.ones(c, np.float32), "var_b")]
    nodes = [helper.make_node("Identity", ["zeros"], ["mean_alias"]),
             helper.make_node("BatchNormalization", ["x", "scale", "zeros", "zeros", "var_a"],
                              ["y1", "m1", "v1", "sm1", "sv1"]),
             helper.make_node("BatchNormalization", ["y1", "scale", "zeros", "mean_alias", "var_b"],
                              ["y", "m2", "v2", "sm2", "sv2"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, c, 4])], inits)
    path = tmp_path / "shared.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    info = inspect_onnx(path)
    assert info.bn.batch_dependent
    assert any("2 training-form BN running-stat initializers are shared" in w for w in info.warnings), info.warnings
