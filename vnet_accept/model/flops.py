"""Counted (not typed-in) compute cost of VNet, for GFLOP/s and TFLOP/s figures.

The count comes from ``torch.utils.flop_counter.FlopCounterMode`` over a forward pass on the meta device (no
memory, no arithmetic): convolutions and transposed convolutions, 2 FLOP per multiply-accumulate. For the real
VNet at one 64×80×80 tile this gives 285.75 GFLOP (SPEC §2).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.model.vnet import DEFAULT_WIDTH, VNet


@lru_cache(maxsize=16)
def count_forward_flops(spatial: tuple[int, int, int] = TILE_SHAPE, width: int = DEFAULT_WIDTH,
                        elu: bool = False) -> int:
    """FLOP of one forward pass of one sample (batch 1) of size ``spatial`` = (D, H, W)."""
    with torch.device("meta"):
        model = VNet(elu=elu, width=width, bn_mode="running").eval()
        x = torch.empty(1, 1, *spatial)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops())


def gflop_per_tile(width: int = DEFAULT_WIDTH) -> float:
    return count_forward_flops(TILE_SHAPE, width) / 1e9
