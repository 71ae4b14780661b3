"""BN folding (vnet_accept.runners.fold_bn): exact in running mode, refused where statistics come from the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vnet_accept.compare import compare_outputs
from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.export.onnx_export import state_dict_hash
from vnet_accept.model.checkpoint import random_state_dict
from vnet_accept.model.vnet import VNet, VNetBatchNorm3d
from vnet_accept.runners import fold_bn
from vnet_accept.runners.fold_bn import (
    BNFoldError,
    FoldedBatchNorm,
    check_foldable,
    fold_batch_norms,
    fold_conv_bn,
)
from vnet_accept.tolerances import Tolerance

pytestmark = pytest.mark.usefixtures("one_thread")

WIDTH = 4
SPATIAL = (16, 32, 32)
FOLD_TOLERANCE = Tolerance(max_abs=1e-5, max_flip_fraction=0.0)


@pytest.fixture(scope="module")
def narrow_model() -> VNet:
    """Width-4 VNet with randomised BN affine parameters and running statistics (not the defaults 0/1/1/0)."""
    model = VNet(width=WIDTH, bn_mode="running")
    model.load_state_dict(random_state_dict(seed=5, width=WIDTH, calibrate=False))
    return model.eval()


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    return torch.from_numpy(ct_like_batch(3, SPATIAL, seed=11))


def _run(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model(x).numpy()


def test_folded_model_equals_the_unfolded_one_in_running_mode(narrow_model, inputs):
    expected = _run(narrow_model.set_bn_mode("running"), inputs)
    folded = fold_batch_norms(narrow_model, "running")
    result = compare_outputs(_run(folded, inputs), expected, FOLD_TOLERANCE, name="folded vs unfolded [running]")
    assert result.passed, result.report()
    assert result.max_abs < 1e-5


def count_batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_every_batch_norm_is_folded_and_the_original_is_untouched(narrow_model):
    before = state_dict_hash(narrow_model)
    bns = count_batch_norms(narrow_model)
    folded = fold_batch_norms(narrow_model)
    assert bns == 24  # one per transition (10) and per LUConv (14), whatever the width
    assert count_batch_norms(folded) == 0
    assert sum(isinstance(m, FoldedBatchNorm) for m in folded.modules()) == bns
    assert "folded into up_conv" in repr(folded.up_tr32.bn1)
    assert state_dict_hash(narrow_model) == before and count_batch_norms(narrow_model) == bns
    assert narrow_model.in_tr.conv1.weight.data_ptr() != folded.in_tr.conv1.weight.data_ptr()


@pytest.mark.parametrize("bn_mode", ["batch", "instance"])
def test_folding_is_refused_when_statistics_come_from_the_input(narrow_model, bn_mode):
    with pytest.raises(BNFoldError, match=rf"bn_mode='{bn_mode}' normalises with statistics of the input"):
        fold_batch_norms(narrow_model, bn_mode)
    with pytest.raises(BNFoldError, match="fixed statistics"):
        check_foldable(bn_mode)
    check_foldable("running")


def test_a_folded_model_refuses_to_change_its_bn_mode(narrow_model):
    folded = fold_batch_norms(narrow_model)
    assert folded.bn_mode == "running"
    folded.set_bn_mode("running")  # a no-op, allowed
    with pytest.raises(BNFoldError, match="cannot switch to bn_mode='batch'"):
        folded.set_bn_mode("batch")


@pytest.mark.parametrize("transpose", [False, True], ids=["conv3d", "conv_transpose3d"])
def test_fold_conv_bn_scales_the_output_channel_axis(transpose):
    """In != out channels, so scaling the wrong weight axis could not go unnoticed."""
    torch.manual_seed(0)
    conv = nn.ConvTranspose3d(6, 3, 2, stride=2) if transpose else nn.Conv3d(6, 3, 3, padding=1)
    bn = VNetBatchNorm3d(3)
    bn.bn_mode = "running"
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 2.0, -1.5]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        bn.running_mean.copy_(torch.tensor([0.4, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([0.25, 4.0, 1.5]))
    x = torch.randn(2, 6, 4, 4, 4)
    with torch.no_grad():
        expected = bn(conv(x))
        fold_conv_bn(conv, bn)
        obtained = conv(x)
    assert torch.allclose(obtained, expected, atol=1e-5, rtol=1e-5)


def test_fold_conv_bn_adds_a_bias_to_a_conv_without_one():
    torch.manual_seed(1)
    conv, bn = nn.Conv3d(2, 2, 1, bias=False), VNetBatchNorm3d(2)
    bn.bn_mode = "running"
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -1.0]))
    x = torch.randn(1, 2, 2, 2, 2)
    with torch.no_grad():
        expected = bn(conv(x))
        fold_conv_bn(conv, bn)
        assert conv.bias is not None
        assert torch.allclose(conv(x), expected, atol=1e-6)


def test_an_unknown_bn_placement_stops_folding(narrow_model, monkeypatch):
    from vnet_accept.model.vnet import OutputTransition

    pairs = {k: v for k, v in fold_bn.FOLD_PAIRS.items() if k is not OutputTransition}
    monkeypatch.setattr(fold_bn, "FOLD_PAIRS", pairs)
    with pytest.raises(ValueError, match="folded 23 of 24 batch norms"):
        fold_batch_norms(narrow_model)
