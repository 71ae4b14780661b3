"""Re-creation of the reference port's export script (``vnet_pth2onnx.py``, SPEC §3), defects included.

It exists so the gate can show, on a file produced the port's way, what goes wrong: upstream's
``ContBatchNorm3d`` normalises with batch statistics *and* updates the running buffers on every forward, so

* the exported graph has training-form BatchNormalization (batch-dependent in ONNX Runtime), and
* the export's tracing pass, fed ``torch.randn``, contaminates the running statistics written into the file.

Never use this for the gate's own artifacts; use :func:`vnet_accept.export.onnx_export.export_onnx`.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path

import onnx
import torch

from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.export.onnx_export import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME
from vnet_accept.io_utils import atomic_write_bytes
from vnet_accept.model.vnet import VNet, VNetBatchNorm3d


def export_port_style(model: VNet, path: str | os.PathLike[str], seed: int = 0,
                      spatial: tuple[int, int, int] | None = TILE_SHAPE, mutate_given_model: bool = False) -> Path:
    """Export as the port does. With ``mutate_given_model`` the caller's model is the one traced (and so
    mutated, as in the port); otherwise a copy is. ``spatial=None`` traces at 32³ with dynamic spatial axes."""
    target = model if mutate_given_model else copy.deepcopy(model)
    target.set_bn_mode("batch").eval()
    for m in target.modules():
        if isinstance(m, VNetBatchNorm3d):
            m.port_updates_running_stats = True
    shape = spatial or (32, 32, 32)
    dummy = torch.randn(1, 1, *shape, generator=torch.Generator().manual_seed(seed))
    axes = {INPUT_NAME: {0: "-1"}, OUTPUT_NAME: {0: "-1"}}
    if spatial is None:
        axes[INPUT_NAME].update({2: "depth", 3: "height", 4: "width"})
        axes[OUTPUT_NAME].update({1: "depth", 2: "height", 3: "width"})
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(target, (dummy,), buf, opset_version=DEFAULT_OPSET, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes=axes, dynamo=False)
    finally:
        for m in target.modules():
            if isinstance(m, VNetBatchNorm3d):
                m.port_updates_running_stats = False
    proto = onnx.load_from_string(buf.getvalue())
    return atomic_write_bytes(path, proto.SerializeToString(deterministic=True))
