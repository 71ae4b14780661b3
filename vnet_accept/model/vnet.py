"""VNet (Milletari et al. 2016) as ported to Ascend, with explicit batch-norm semantics.

Module and parameter names follow upstream ``mattmacy/vnet.pytorch`` so that a real checkpoint loads strictly
(SPEC §2). Differences from upstream, all deliberate and matching the port:

* the input block's residual repeats the input along the **channel** axis (upstream used the batch axis);
* the output is ``(N, D, H, W, 2)`` log-probabilities (or probabilities), not a flattened ``(N·D·H·W, 2)``;
* batch norm never updates its buffers in a forward pass; what it normalises with is ``bn_mode`` (SPEC §2.1).

Array convention: input ``(N, 1, D, H, W)`` float32 (NCDHW, normalised CT), output ``(N, D, H, W, 2)``
float32 with class 1 = lung. D, H and W must be multiples of 16 (four stride-2 levels).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vnet_accept.model.bn_modes import BN_MODE_HELP, BN_MODES, check_bn_mode  # noqa: F401 - re-exported

BNMode = Literal["batch", "instance", "running"]
#: Real VNet base width; issue 8's narrow self-test model uses a smaller one.
DEFAULT_WIDTH = 16
#: Every spatial size must be divisible by this (four stride-2 down-sampling levels).
SPATIAL_MULTIPLE = 16


class VNetBatchNorm3d(nn.BatchNorm3d):
    """Batch norm whose semantics is chosen by ``bn_mode`` and which never mutates its buffers.

    ``port_updates_running_stats`` reproduces upstream's ``ContBatchNorm3d`` exactly (batch statistics *and*
    an update of the running buffers on every forward). It exists only to re-create the reference port's
    export for inspection and planted-defect tests; the gate's own model never sets it.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.bn_mode: str = "batch"
        self.port_updates_running_stats = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.port_updates_running_stats:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, True,
                                self.momentum, self.eps)
        if self.bn_mode == "batch":
            # Training-form batch norm on *copies* of the buffers: batch statistics, nothing updated. The copies
            # also give the exporter the tensors it needs to emit the port's 5-output BatchNormalization.
            return F.batch_norm(x, self.running_mean.clone(), self.running_var.clone(), self.weight, self.bias,
                                True, self.momentum, self.eps)
        if self.bn_mode == "instance":
            return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def _activation(elu: bool, nchan: int) -> nn.Module:
    return nn.ELU(inplace=False) if elu else nn.PReLU(nchan)


class LUConv(nn.Module):
    def __init__(self, nchan: int, elu: bool) -> None:
        super().__init__()
        self.relu1 = _activation(elu, nchan)
        self.conv1 = nn.Conv3d(nchan, nchan, kernel_size=5, padding=2)
        self.bn1 = VNetBatchNorm3d(nchan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu1(self.bn1(self.conv1(x)))


def _conv_stack(nchan: int, depth: int, elu: bool) -> nn.Sequential:
    return nn.Sequential(*(LUConv(nchan, elu) for _ in range(depth)))


class InputTransition(nn.Module):
    def __init__(self, out_chans: int, elu: bool) -> None:
        super().__init__()
        self.out_chans = out_chans
        self.conv1 = nn.Conv3d(1, out_chans, kernel_size=5, padding=2)
        self.bn1 = VNetBatchNorm3d(out_chans)
        self.relu1 = _activation(elu, out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(x))
        # Residual: the single input channel repeated along channels (the port's fix of upstream's dim-0 cat).
        residual = torch.cat([x] * self.out_chans, dim=1)
        return self.relu1(out + residual)


class DownTransition(nn.Module):
    def __init__(self, in_chans: int, n_convs: int, elu: bool, dropout: bool = False) -> None:
        super().__init__()
        out_chans = 2 * in_chans
        self.down_conv = nn.Conv3d(in_chans, out_chans, kernel_size=2, stride=2)
        self.bn1 = VNetBatchNorm3d(out_chans)
        self.do1 = nn.Dropout3d() if dropout else nn.Identity()
        self.relu1 = _activation(elu, out_chans)
        self.relu2 = _activation(elu, out_chans)
        self.ops = _conv_stack(out_chans, n_convs, elu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        down = self.relu1(self.bn1(self.down_conv(x)))
        out = self.ops(self.do1(down))
        return self.relu2(out + down)


class UpTransition(nn.Module):
    def __init__(self, in_chans: int, out_chans: int, n_convs: int, elu: bool, dropout: bool = False) -> None:
        super().__init__()
        self.up_conv = nn.ConvTranspose3d(in_chans, out_chans // 2, kernel_size=2, stride=2)
        self.bn1 = VNetBatchNorm3d(out_chans // 2)
        self.do1 = nn.Dropout3d() if dropout else nn.Identity()
        self.do2 = nn.Dropout3d()
        self.relu1 = _activation(elu, out_chans // 2)
        self.relu2 = _activation(elu, out_chans)
        self.ops = _conv_stack(out_chans, n_convs, elu)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.up_conv(self.do1(x))))
        cat = torch.cat((out, self.do2(skip)), dim=1)
        return self.relu2(self.ops(cat) + cat)


class OutputTransition(nn.Module):
    def __init__(self, in_chans: int, elu: bool, nll: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_chans, 2, kernel_size=5, padding=2)
        self.bn1 = VNetBatchNorm3d(2)
        self.conv2 = nn.Conv3d(2, 2, kernel_size=1)
        self.relu1 = _activation(elu, 2)
        self.nll = nll

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu1(self.bn1(self.conv1(x))))
        out = out.permute(0, 2, 3, 4, 1)  # (N, 2, D, H, W) -> (N, D, H, W, 2): classes last, as the port
        return F.log_softmax(out, dim=-1) if self.nll else F.softmax(out, dim=-1)


class VNet(nn.Module):
    """VNet. ``VNet(elu=False, nll=True)`` is the port's configuration (PReLU, log-softmax).

    Args:
        elu: ELU activations (no parameters) instead of per-channel PReLU.
        nll: log-softmax output (log-probabilities) instead of softmax.
        bn_mode: ``batch`` | ``instance`` | ``running`` (SPEC §2.1); change later with :meth:`set_bn_mode`.
        width: base channel count (16 = the real VNet; smaller only for the self-test model).
    """

    def __init__(self, elu: bool = False, nll: bool = True, bn_mode: str = "running",
                 width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number >= 2, got {width}")
        w = width
        self.elu, self.nll, self.width = elu, nll, width
        self.in_tr = InputTransition(w, elu)
        self.down_tr32 = DownTransition(w, 1, elu)
        self.down_tr64 = DownTransition(2 * w, 2, elu)
        self.down_tr128 = DownTransition(4 * w, 3, elu, dropout=True)
        self.down_tr256 = DownTransition(8 * w, 2, elu, dropout=True)
        self.up_tr256 = UpTransition(16 * w, 16 * w, 2, elu, dropout=True)
        self.up_tr128 = UpTransition(16 * w, 8 * w, 2, elu, dropout=True)
        self.up_tr64 = UpTransition(8 * w, 4 * w, 1, elu)
        self.up_tr32 = UpTransition(4 * w, 2 * w, 1, elu)
        self.out_tr = OutputTransition(2 * w, elu, nll)
        self.set_bn_mode(bn_mode)

    @property
    def bn_mode(self) -> str:
        return self._bn_mode

    def set_bn_mode(self, bn_mode: str) -> VNet:
        self._bn_mode = check_bn_mode(bn_mode)
        for m in self.modules():
            if isinstance(m, VNetBatchNorm3d):
                m.bn_mode = bn_mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != 1:
            raise ValueError(f"VNet expects (N, 1, D, H, W) input, got shape {tuple(x.shape)}")
        if any(s % SPATIAL_MULTIPLE for s in x.shape[2:]):
            raise ValueError(f"VNet spatial sizes must be multiples of {SPATIAL_MULTIPLE}, got {tuple(x.shape[2:])}")
        out16 = self.in_tr(x)
        out32 = self.down_tr32(out16)
        out64 = self.down_tr64(out32)
        out128 = self.down_tr128(out64)
        out256 = self.down_tr256(out128)
        out = self.up_tr256(out256, out128)
        out = self.up_tr128(out, out64)
        out = self.up_tr64(out, out32)
        out = self.up_tr32(out, out16)
        return self.out_tr(out)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
