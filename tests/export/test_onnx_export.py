"""ONNX export mechanics on a narrow VNet (fast); the full-width artifact is judged in vnet_accept/checks."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.export.inspect import inspect_onnx
from vnet_accept.export.onnx_export import (
    ExportOptions,
    export_onnx,
    export_onnx_bytes,
    is_training_form,
    state_dict_hash,
    unshare_training_bn_state,
)
from vnet_accept.model.checkpoint import normalise_checkpoint, random_state_dict
from vnet_accept.model.vnet import VNet
from vnet_accept.results.inference import run_in_batches
from vnet_accept.runners.onnxrt import OnnxRuntimeRunner
from vnet_accept.runners.torch_runner import TorchRunner

SMALL = (16, 32, 32)


@pytest.fixture(scope="module")
def narrow():
    return normalise_checkpoint(random_state_dict(seed=11, width=4))


def _proto(data: bytes) -> onnx.ModelProto:
    return onnx.load_from_string(data)


def test_contract_names_shapes_opset_and_metadata(narrow, tmp_path):
    path = export_onnx(narrow.build_model(), tmp_path / "v.onnx", ExportOptions("running"),
                       checkpoint_sha256=narrow.sha256 or "abc")
    info = inspect_onnx(path)
    assert [(t.name, t.shape) for t in info.inputs] == [("actual_input_1", ("batch", 1, 64, 80, 80))]
    assert [(t.name, t.shape) for t in info.outputs] == [("output1", ("batch", 64, 80, 80, 2))]
    assert info.opset == 11
    assert info.metadata["vnet_accept.bn_mode"] == "running"
    assert info.metadata["vnet_accept.checkpoint_sha256"] == (narrow.sha256 or "abc")
    assert '"torch"' in info.metadata["vnet_accept.versions"]
    onnx.checker.check_model(onnx.load(str(path)))


def test_export_is_deterministic_and_leaves_the_model_alone(narrow):
    model = narrow.build_model("batch")
    before = state_dict_hash(model)
    first = export_onnx_bytes(model, ExportOptions("batch", spatial=None))
    second = export_onnx_bytes(model, ExportOptions("batch", spatial=None))
    assert first == second
    assert state_dict_hash(model) == before
    assert model.bn_mode == "batch" and not model.training


@pytest.mark.parametrize("bn_mode, semantics, dependent", [
    ("batch", "batch", True), ("instance", "instance", False), ("running", "running", False)])
def test_each_mode_exports_its_semantics_and_matches_torch(narrow, bn_mode, semantics, dependent):
    data = export_onnx_bytes(narrow.build_model(bn_mode), ExportOptions(bn_mode, spatial=None))
    proto = _proto(data)
    info_kinds = {n.op_type for n in proto.graph.node}
    if bn_mode == "instance":
        assert "InstanceNormalization" in info_kinds and "BatchNormalization" not in info_kinds
    if bn_mode == "batch":
        bns = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
        assert bns and all(is_training_form(n) for n in bns)
    x = ct_like_batch(3, SMALL, seed=21)
    with OnnxRuntimeRunner(data, bn_mode=bn_mode) as ort_runner, TorchRunner(narrow.build_model(), bn_mode) as ref:
        obtained = run_in_batches(ort_runner, x, 3)
        expected = run_in_batches(ref, x, 3)
    assert np.abs(obtained - expected).max() < 1e-4


def test_shared_running_stat_initializers_are_unshared():
    """Default-initialised BN (mean 0, var 1, weight 1, bias 0) makes the exporter de-duplicate initializers;
    ONNX Runtime then overwrites the shared tensors in place. The export must give each node its own copy."""
    torch.manual_seed(0)
    model = VNet(width=4).eval()  # default BN buffers: the dangerous case
    data = export_onnx_bytes(model, ExportOptions("batch", spatial=None))
    proto = _proto(data)
    bns = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    private = [n.input[s] for n in bns for s in (3, 4)]
    assert len(set(private)) == len(private) == 2 * len(bns)  # every running stat has its own tensor
    assert unshare_training_bn_state(proto) == 0  # already done by the export
    assert not inspect_onnx_bytes_warnings(data)
    x = ct_like_batch(4, SMALL, seed=22)
    with OnnxRuntimeRunner(data) as ort_runner, TorchRunner(model, "batch") as ref:
        first = run_in_batches(ort_runner, x, 4)
        second = run_in_batches(ort_runner, x, 4)  # a second run sees the in-place updates of the first
        expected = run_in_batches(ref, x, 4)
    assert np.abs(first - expected).max() < 1e-4
    assert np.abs(second - expected).max() < 1e-4


def inspect_onnx_bytes_warnings(data: bytes) -> tuple[str, ...]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.onnx"
        path.write_bytes(data)
        return inspect_onnx(path).warnings
