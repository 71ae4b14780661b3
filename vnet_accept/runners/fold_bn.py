"""Batch norm folded into the preceding convolution, for ``running`` BN only (SPEC §2.1).

With stored statistics, ``BN(conv(x)) = γ·(W∗x + b − μ)/√(σ²+ε) + β`` is itself a convolution with weights
``W' = W·s`` and bias ``b' = (b − μ)·s + β`` per output channel, where ``s = γ/√(σ²+ε)``. Every BN of VNet
directly follows a convolution (or the transposed convolution of an up block), so the folded network has no BN
left: one kernel fewer per layer, the same arithmetic. The folding is done in float64 and stored in the model's
dtype.

``batch`` and ``instance`` normalise with statistics of the input itself, which no fixed weight can express:
folding is refused for them (:class:`BNFoldError`), and a folded model refuses to be switched to them.

Array convention: unchanged — the folded model takes ``(N, 1, D, H, W)`` and returns ``(N, D, H, W, 2)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from vnet_accept.errors import UsageError
from vnet_accept.model.vnet import (
    DownTransition,
    InputTransition,
    LUConv,
    OutputTransition,
    UpTransition,
    VNet,
    VNetBatchNorm3d,
)

#: Which convolution feeds which BN, per VNet block class: ``(conv attribute, BN attribute)``.
FOLD_PAIRS: dict[type[nn.Module], tuple[str, str]] = {
    InputTransition: ("conv1", "bn1"),
    LUConv: ("conv1", "bn1"),
    DownTransition: ("down_conv", "bn1"),
    UpTransition: ("up_conv", "bn1"),
    OutputTransition: ("conv1", "bn1"),
}


class BNFoldError(UsageError):
    """Folding asked for where it would change the model's semantics (a BN mode with data-dependent statistics)."""


class FoldedBatchNorm(nn.Identity):
    """Stands where a BN was: the BN now lives in the weights of ``conv`` (named for the printed model)."""

    def __init__(self, conv: str, num_features: int) -> None:
        super().__init__()
        self.conv, self.num_features = conv, num_features

    def extra_repr(self) -> str:
        return f"{self.num_features}, folded into {self.conv}"


class FoldedVNet(VNet):
    """A VNet whose batch norms are folded into its convolutions: ``running`` semantics only, for good."""

    def set_bn_mode(self, bn_mode: str) -> VNet:
        if bn_mode != "running":
            raise BNFoldError(f"this VNet has its batch norms folded into the convolutions (running statistics); "
                              f"it cannot switch to bn_mode={bn_mode!r}: build the runner from the unfolded model")
        self._bn_mode = "running"
        return self


def check_foldable(bn_mode: str) -> None:
    """Raise :class:`BNFoldError` unless ``bn_mode`` has fixed statistics (``running``)."""
    if bn_mode != "running":
        raise BNFoldError(f"BN folding needs fixed statistics, but bn_mode={bn_mode!r} normalises with statistics "
                          f"of the input ({'each batch' if bn_mode == 'batch' else 'each sample'}); fold only with "
                          "bn_mode='running', or turn folding off (fold_bn=False)")


def fold_conv_bn(conv: nn.Conv3d | nn.ConvTranspose3d, bn: nn.BatchNorm3d) -> None:
    """Fold ``bn`` (its running statistics and affine parameters) into ``conv`` in place."""
    if conv.groups != 1:
        raise ValueError("folding grouped convolutions is not implemented (VNet has none)")
    with torch.no_grad():
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        weight = conv.weight.double()
        # Output channels are dim 0 of a Conv3d weight (out, in, k, k, k), dim 1 of a ConvTranspose3d's (in, out, ...).
        shape = [1] * weight.dim()
        shape[1 if isinstance(conv, nn.ConvTranspose3d) else 0] = -1
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        new_bias = (bias - bn.running_mean.double()) * scale + bn.bias.double()
        conv.weight.copy_((weight * scale.reshape(shape)).to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype))
        else:
            conv.bias.copy_(new_bias.to(conv.bias.dtype))


def fold_batch_norms(model: VNet, bn_mode: str = "running") -> FoldedVNet:
    """A copy of ``model`` (left untouched) with every BN folded into its convolution.

    Raises :class:`BNFoldError` for ``bn_mode`` other than ``running``, and ``ValueError`` if a BN is found that
    does not directly follow a convolution this module knows (so a changed topology never folds half a model).
    """
    check_foldable(bn_mode)
    folded = copy.deepcopy(model).eval()
    folded.__class__ = FoldedVNet
    total = sum(isinstance(m, VNetBatchNorm3d) for m in folded.modules())
    done = 0
    for block in list(folded.modules()):
        pair = FOLD_PAIRS.get(type(block))
        if pair is None:
            continue
        conv_name, bn_name = pair
        conv, bn = getattr(block, conv_name), getattr(block, bn_name)
        if not isinstance(bn, VNetBatchNorm3d) or not isinstance(conv, (nn.Conv3d, nn.ConvTranspose3d)):
            raise ValueError(f"{type(block).__name__}: expected {conv_name} (convolution) -> {bn_name} (BN), "
                             f"found {type(conv).__name__} -> {type(bn).__name__}")
        fold_conv_bn(conv, bn)
        setattr(block, bn_name, FoldedBatchNorm(conv_name, bn.num_features))
        done += 1
    if done != total:
        raise ValueError(f"folded {done} of {total} batch norms; the model has BNs this module does not know how "
                         "to fold")
    folded._bn_mode = "running"
    return folded
