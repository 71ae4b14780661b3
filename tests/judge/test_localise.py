"""Localising a parity failure: the first VNet layer (the port's module names) whose output diverges, on width-2
models exported in each BN form, with node names and without."""

from __future__ import annotations

import onnx
import pytest
import torch

from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.export.onnx_export import ExportOptions, export_onnx
from vnet_accept.judge.criterion import judged
from vnet_accept.judge.localise import annotate, localise, module_of_node
from vnet_accept.model.checkpoint import normalise_checkpoint, random_state_dict

CHANGED = "up_tr128.ops.0.conv1"
INPUTS = ct_like_batch(2, (16, 32, 32), seed=5)


@pytest.fixture(scope="module")
def checkpoint():
    return normalise_checkpoint(random_state_dict(seed=8, width=2))


def _export(checkpoint, folder, bn_mode, change: str | None = None):
    model = checkpoint.build_model(bn_mode)
    if change:
        with torch.no_grad():
            weight = dict(model.named_parameters())[f"{change}.weight"]
            noise = torch.randn(weight.shape, generator=torch.Generator().manual_seed(0))
            weight.add_(0.01 * weight.pow(2).mean().sqrt() * noise)
    return export_onnx(model, folder / f"{bn_mode}_{change or 'clean'}.onnx", ExportOptions(bn_mode, spatial=None))


def test_module_names_come_from_the_exporters_scopes():
    modules = {"down_tr64.ops.0.conv1", "up_tr128.up_conv", "in_tr.relu1"}
    assert module_of_node("/down_tr64/ops/ops.0/conv1/Conv", modules) == "down_tr64.ops.0.conv1"
    assert module_of_node("/up_tr128/up_conv/ConvTranspose", modules) == "up_tr128.up_conv"
    assert module_of_node("/in_tr/relu1/PRelu", modules) == "in_tr.relu1"
    assert module_of_node("/in_tr/Concat", modules) is None and module_of_node("Conv_12", modules) is None


@pytest.mark.parametrize("bn_mode", ["running", "batch"])
def test_a_changed_weight_is_localised_to_its_layer(bn_mode, checkpoint, tmp_path, one_thread):
    path = _export(checkpoint, tmp_path, bn_mode, CHANGED)
    found = localise(path, checkpoint.build_model(bn_mode), bn_mode, INPUTS, atol=1e-4)
    first, before = found.first_diverging, found.last_agreeing
    assert first.module == CHANGED and not first.agrees and before.agrees
    assert before.module == "up_tr128.relu1"  # the layer executed just before it
    assert found.describe().startswith(f"first diverging layer {CHANGED}")
    if bn_mode == "running":  # the exporter folded bn1 into the convolution: compared with bn1's output
        assert first.folded == "up_tr128.ops.0.bn1" and "(+ bn1 folded)" in found.describe()


def test_without_scoped_node_names_the_convolutions_are_matched_by_order(checkpoint, tmp_path, one_thread):
    path = _export(checkpoint, tmp_path, "batch", CHANGED)
    proto = onnx.load(str(path))
    for i, node in enumerate(proto.graph.node):
        node.name = f"node_{i}"  # e.g. after an optimiser renamed everything
    onnx.save(proto, str(path))
    found = localise(path, checkpoint.build_model("batch"), "batch", INPUTS, atol=1e-4)
    assert found.mapping.startswith("convolutions in execution order")
    assert found.first_diverging.module == CHANGED


def test_a_clean_file_agrees_everywhere_and_the_phrase_goes_into_the_first_line(checkpoint, tmp_path, one_thread):
    path = _export(checkpoint, tmp_path, "running")
    found = localise(path, checkpoint.build_model("running"), "running", INPUTS, atol=1e-4)
    assert found.first_diverging is None and found.describe().startswith("every one of")
    c = judged("parity.x", "d", False, reason="max|Δ| 0.1", message="FAILED onnxrt vs torch [bs1]: max|Δ|=0.1\nmore")
    annotate(c, found)
    assert c.message.splitlines()[0].startswith("FAILED onnxrt vs torch [bs1]: every one of")
    assert c.message.splitlines()[1] == "more" and c.details["localisation"]["first_diverging"] is None
