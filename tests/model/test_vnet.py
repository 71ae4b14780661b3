"""The model: topology against the reference key list, size, counted FLOPs, output convention, BN modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.export.onnx_export import state_dict_hash
from vnet_accept.model.flops import count_forward_flops
from vnet_accept.model.vnet import BN_MODES, VNet, parameter_count

SMALL = (16, 32, 32)


def _shape_text(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) if t.dim() else "scalar"


def test_state_dict_matches_reference_key_list(shared_dir):
    rows = (shared_dir / "reference" / "vnet_state_dict.tsv").read_text().splitlines()
    header, *entries = rows
    assert header.split("\t")[:2] == ["key", "shape"]
    reference = [tuple(line.split("\t")) for line in entries if line.strip()]
    ours = [(k, _shape_text(v), str(v.dtype).removeprefix("torch.")) for k, v in VNet().state_dict().items()]
    assert len(ours) == 202
    assert ours == reference  # names, order, shapes and dtypes


def test_parameter_counts_match_spec():
    assert parameter_count(VNet(elu=False)) == 45_603_934
    assert parameter_count(VNet(elu=True)) == 45_600_316  # PReLU slopes are the only difference


def test_forward_flops_are_counted_not_typed():
    flops = count_forward_flops()
    assert round(flops / 1e9, 2) == 285.75
    # Doubling the depth doubles the work of every layer: the count follows the input, it is not a constant.
    assert count_forward_flops((128, 80, 80)) == 2 * flops


def test_narrow_width_scales_channels():
    narrow = VNet(width=4)
    assert narrow.state_dict()["in_tr.conv1.weight"].shape == (4, 1, 5, 5, 5)
    assert narrow.state_dict()["out_tr.conv1.weight"].shape == (2, 8, 5, 5, 5)
    assert parameter_count(narrow) < parameter_count(VNet()) / 10


@pytest.mark.parametrize("nll", [True, False])
def test_output_is_channels_last_probability_distribution(nll):
    torch.manual_seed(0)
    model = VNet(nll=nll, width=4).eval()
    x = torch.from_numpy(ct_like_batch(2, SMALL, seed=1))
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, *SMALL, 2)
    probs = out.exp() if nll else out
    assert torch.allclose(probs.sum(-1), torch.ones(2, *SMALL), atol=1e-5)


@pytest.mark.parametrize("bn_mode", BN_MODES)
@pytest.mark.parametrize("training", [False, True])
def test_no_bn_mode_mutates_buffers(bn_mode, training):
    torch.manual_seed(0)
    model = VNet(width=4, bn_mode=bn_mode).train(training)
    before = state_dict_hash(model)
    with torch.no_grad():
        model(torch.from_numpy(ct_like_batch(2, SMALL, seed=2)))
    assert state_dict_hash(model) == before


def test_batch_mode_at_batch_one_equals_instance_mode():
    """SPEC §2.1: at batch 1, batch statistics are per-sample statistics."""
    torch.manual_seed(0)
    model = VNet(width=4).eval()
    x = torch.from_numpy(ct_like_batch(1, SMALL, seed=3))
    with torch.no_grad():
        batch = model.set_bn_mode("batch")(x)
        instance = model.set_bn_mode("instance")(x)
    assert torch.allclose(batch, instance, atol=1e-5)


def test_batch_mode_depends_on_batch_but_running_does_not():
    torch.manual_seed(0)
    model = VNet(width=4).eval()
    x = torch.from_numpy(ct_like_batch(3, SMALL, seed=4))
    with torch.no_grad():
        model.set_bn_mode("running")
        assert torch.allclose(model(x)[:1], model(x[:1]), atol=1e-5)
        model.set_bn_mode("batch")
        assert not torch.allclose(model(x)[:1], model(x[:1]), atol=1e-3)


def test_input_residual_repeats_along_channels():
    """The port's fix: the input block's residual repeats the input along channels, so batch > 1 works and
    each sample's residual is its own input (upstream concatenated along the batch axis)."""
    model = VNet(width=4).eval()
    block = model.in_tr
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv1.bias.zero_()
        block.bn1.weight.fill_(0.0)
        block.bn1.bias.fill_(0.0)
        model.set_bn_mode("running")
        x = torch.randn(2, 1, *SMALL)
        out = block(x)  # = PReLU(0 + residual)
    expected = torch.nn.functional.prelu(x.repeat(1, 4, 1, 1, 1), block.relu1.weight)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("shape, message", [((1, 2, 16, 16, 16), r"\(N, 1, D, H, W\)"),
                                            ((1, 1, 16, 16, 24), "multiples of 16")])
def test_rejects_inputs_it_cannot_process(shape, message):
    with pytest.raises(ValueError, match=message):
        VNet(width=4)(torch.zeros(shape))


def test_unknown_bn_mode_is_refused():
    with pytest.raises(ValueError, match="batch, instance, running"):
        VNet(width=4, bn_mode="eval")


def test_dropout_is_inactive_in_eval():
    torch.manual_seed(0)
    model = VNet(width=4).eval()
    x = torch.from_numpy(ct_like_batch(1, SMALL, seed=5))
    with torch.no_grad():
        assert np.array_equal(model(x).numpy(), model(x).numpy())
