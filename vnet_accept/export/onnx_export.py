"""ONNX export of VNet with an explicit batch-norm semantics (SPEC §3, §2.1).

The contract is the port's: input ``actual_input_1`` (N, 1, 64, 80, 80) NCDHW float32, output ``output1``
(N, 64, 80, 80, 2) float32 log-probabilities, dynamic batch axis, opset 11 by default (what ATC wants), the
TorchScript exporter (``dynamo=False``; the new exporter targets opset >= 18).

Unlike the port's script, the export

* never mutates the model it is given (it exports a deep copy whose BN never updates buffers, and checks the
  state-dict hash before and after);
* is deterministic: the same checkpoint and options give a byte-identical file;
* writes provenance into ``metadata_props`` (BN mode, checkpoint sha256, opset, library versions);
* gives every training-form BatchNormalization its own running-statistic initializers, because ONNX Runtime
  aliases those inputs to outputs and overwrites them in place (a de-duplicated, shared initializer would be
  corrupted for every other node that reads it).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper

from vnet_accept import __version__
from vnet_accept.data.tiles import TILE_SHAPE
from vnet_accept.errors import UsageError
from vnet_accept.io_utils import atomic_write_bytes
from vnet_accept.model.vnet import VNet, check_bn_mode
from vnet_accept.reference import ONNX_INPUT_NAME as INPUT_NAME
from vnet_accept.reference import ONNX_OUTPUT_NAME as OUTPUT_NAME

DEFAULT_OPSET = 11
META_PREFIX = "vnet_accept."
#: Traced size for exports with dynamic spatial axes: the smallest size whose bottleneck has >1 voxel.
_DYNAMIC_TRACE_SPATIAL = (32, 32, 32)


@dataclass(frozen=True)
class ExportOptions:
    bn_mode: str = "running"
    opset: int = DEFAULT_OPSET
    #: (D, H, W) of the exported input, or None for dynamic spatial axes (tests at reduced size).
    spatial: tuple[int, int, int] | None = TILE_SHAPE

    def cache_inputs(self) -> dict:
        return {"bn_mode": self.bn_mode, "opset": self.opset, "spatial": self.spatial,
                "torch": torch.__version__, "onnx": onnx.__version__, "vnet_accept": __version__}


def opset_range() -> tuple[int, int]:
    """The opsets the TorchScript exporter of this torch accepts."""
    from torch.onnx import _constants

    return int(getattr(_constants, "ONNX_MIN_OPSET", 7)), int(getattr(_constants, "ONNX_MAX_OPSET", 20))


def check_opset(opset: int) -> None:
    """:class:`UsageError` naming ``--opset`` when this torch cannot export ``opset``."""
    low, high = opset_range()
    if not low <= opset <= high:
        raise UsageError(f"--opset {opset}: torch {torch.__version__} exports opsets {low} to {high}; pass one of "
                         f"them (11 is what ATC wants)")


def state_dict_hash(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (names, dtypes, shapes, bytes): detects any mutation."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def _state_snapshot(model: torch.nn.Module) -> list[tuple[str, int, int]]:
    """Every state tensor's name, identity and in-place version counter: any write to the model's state (an
    in-place update bumps the version, a replaced tensor changes the identity) changes it. The guard around an
    export, without hashing 180 MB twice per export (:func:`state_dict_hash` is the check the gate reports)."""
    return [(name, id(t), t._version) for name, t in model.state_dict(keep_vars=True).items()]


def export_onnx_bytes(model: VNet, options: ExportOptions = ExportOptions(), checkpoint_sha256: str = "",
                      extra_metadata: dict[str, str] | None = None) -> bytes:
    """Export ``model`` (left untouched) and return the serialised, checked ONNX model."""
    check_bn_mode(options.bn_mode)
    check_opset(options.opset)
    before = _state_snapshot(model)
    clone = copy.deepcopy(model).cpu().float().eval().set_bn_mode(options.bn_mode)
    spatial = options.spatial or _DYNAMIC_TRACE_SPATIAL
    dummy = torch.zeros(1, 1, *spatial)
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    if options.spatial is None:
        dynamic_axes[INPUT_NAME].update({2: "depth", 3: "height", 4: "width"})
        dynamic_axes[OUTPUT_NAME].update({1: "depth", 2: "height", 3: "width"})
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The exporter warns about its own deprecation and about BN's train flag in eval export; both expected.
        warnings.simplefilter("ignore")
        torch.onnx.export(clone, (dummy,), buf, opset_version=options.opset, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes, do_constant_folding=True,
                          dynamo=False)
    if _state_snapshot(model) != before:  # pragma: no cover - guarded by construction and tested
        raise RuntimeError("export mutated the model's state dict; this is a bug in vnet-accept")
    proto = onnx.load_from_string(buf.getvalue())
    unshare_training_bn_state(proto)
    metadata = {
        "bn_mode": options.bn_mode,
        "checkpoint_sha256": checkpoint_sha256,
        "opset": str(options.opset),
        "input": f"{INPUT_NAME} (N,1,{','.join(map(str, spatial)) if options.spatial else 'D,H,W'}) NCDHW float32",
        "output": f"{OUTPUT_NAME} (N,D,H,W,2) float32 {'log-probabilities' if model.nll else 'probabilities'}",
        "width": str(model.width),
        "activation": "ELU" if model.elu else "PReLU",
        "versions": json.dumps({"vnet_accept": __version__, "torch": torch.__version__,
                                "onnx": onnx.__version__}, sort_keys=True),
    }
    metadata.update(extra_metadata or {})
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, value
    proto.producer_name, proto.producer_version = "vnet-accept", __version__
    onnx.checker.check_model(proto, full_check=False)
    return proto.SerializeToString(deterministic=True)


def export_onnx(model: VNet, path: str | os.PathLike[str], options: ExportOptions = ExportOptions(),
                checkpoint_sha256: str = "", extra_metadata: dict[str, str] | None = None) -> Path:
    """Export to ``path`` atomically (an interrupted export leaves no partial file)."""
    data = export_onnx_bytes(model, options, checkpoint_sha256, extra_metadata)
    return atomic_write_bytes(path, data)


def unshare_training_bn_state(proto: onnx.ModelProto) -> int:
    """Give each training-form BatchNormalization private running mean/var initializers.

    The exporter feeds them through ``Identity`` nodes of de-duplicated initializers, which ONNX Runtime
    removes, so the in-place update would land in a tensor other nodes read (e.g. a BN bias of equal value).
    Every such input is re-pointed to its own copy; Identity nodes left without consumers are dropped.
    Returns how many inputs were re-pointed. Inference-form nodes are left alone (nothing writes to them).
    """
    graph = proto.graph
    inits = {init.name: init for init in graph.initializer}
    identity_source = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    uses = Counter(name for node in graph.node for name in node.input)
    private: set[str] = set()
    changed = 0
    for node in graph.node:
        if not is_training_form(node):
            continue
        for slot in (3, 4):
            name = node.input[slot]
            if name in inits and uses[name] == 1:
                continue  # already private
            source = name
            while source in identity_source and source not in inits:
                source = identity_source[source]
            if source not in inits or name in private:
                continue
            fresh = f"{source}__private_{len(private)}"
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(inits[source]).copy(), fresh))
            node.input[slot] = fresh
            private.add(fresh)
            changed += 1
    _drop_unused_identities(graph)
    _drop_unused_initializers(graph)
    return changed


def _drop_unused_identities(graph: onnx.GraphProto) -> None:
    outputs = {o.name for o in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if n.op_type == "Identity" and n.output[0] not in used]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def is_training_form(node: onnx.NodeProto) -> bool:
    """A BatchNormalization that computes batch statistics: >1 output (opset < 14) or ``training_mode=1``."""
    if node.op_type != "BatchNormalization":
        return False
    for attr in node.attribute:
        if attr.name == "training_mode":
            return bool(attr.i)
    return len([o for o in node.output if o]) > 1
