"""Inspection of any ONNX file (ours, the port's, a contributor's): I/O, opset, metadata, and BN semantics.

BN semantics is read from the graph itself, never from the file name or metadata (SPEC §2.1):

* ``BatchNormalization`` with more than one output (opset < 14) or ``training_mode=1``: training form —
  ONNX Runtime normalises with the statistics of the batch as given, so outputs depend on the batch;
* ``BatchNormalization`` with one output: inference form, stored running statistics, batch-invariant;
* ``InstanceNormalization``: per-sample statistics, batch-invariant.

A graph with more than one kind is ``mixed``. Where our own metadata names a BN mode, it is cross-checked.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

from vnet_accept.errors import UsageError
from vnet_accept.export.onnx_export import META_PREFIX, is_training_form

KIND_TRAINING = "training-form BatchNormalization"
KIND_INFERENCE = "inference BatchNormalization"
KIND_INSTANCE = "InstanceNormalization"
SEMANTICS_BY_KIND = {KIND_TRAINING: "batch", KIND_INFERENCE: "running", KIND_INSTANCE: "instance"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int | str | None, ...]  # ints, symbolic names, or None for unknown

    def render(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype}[{dims}]"


@dataclass(frozen=True)
class BnReport:
    counts: dict[str, int]
    kind: str  # one of the KIND_* names, "mixed", or "none"
    semantics: str  # batch | running | instance | mixed | none
    batch_dependent: bool
    explanation: str


@dataclass(frozen=True)
class OnnxInfo:
    path: str
    opset: int
    ir_version: int
    producer: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict[str, str]
    op_counts: dict[str, int]
    bn: BnReport
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self) -> str:
        lines = [f"ONNX file: {self.path}",
                 f"  opset {self.opset}, IR version {self.ir_version}, producer {self.producer or '?'}"]
        lines += [f"  input  {t.render()}" for t in self.inputs]
        lines += [f"  output {t.render()}" for t in self.outputs]
        lines.append(f"  BN semantics: {self.bn.semantics} ({self.bn.kind}); "
                     f"{'BATCH-DEPENDENT' if self.bn.batch_dependent else 'batch-invariant'}")
        lines.append(f"    {self.bn.explanation}")
        if self.metadata:
            lines.append("  metadata:")
            lines += [f"    {k} = {v}" for k, v in sorted(self.metadata.items())]
        lines.append("  ops: " + ", ".join(f"{op}×{n}" for op, n in sorted(self.op_counts.items())))
        lines += [f"  WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def classify_bn(graph: onnx.GraphProto) -> BnReport:
    counts: Counter[str] = Counter()
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            counts[KIND_TRAINING if is_training_form(node) else KIND_INFERENCE] += 1
        elif node.op_type == "InstanceNormalization":
            counts[KIND_INSTANCE] += 1
    kinds = [k for k in (KIND_TRAINING, KIND_INFERENCE, KIND_INSTANCE) if counts[k]]
    if not kinds:
        return BnReport({}, "none", "none", False, "no normalisation nodes (BN folded into convolutions, or a "
                        "decomposed form this inspector does not recognise)")
    kind = kinds[0] if len(kinds) == 1 else "mixed"
    semantics = SEMANTICS_BY_KIND[kind] if kind in SEMANTICS_BY_KIND else "mixed"
    dependent = counts[KIND_TRAINING] > 0
    summary = ", ".join(f"{counts[k]} {k}" for k in kinds)
    if dependent:
        why = (f"{summary}: ONNX Runtime normalises with the statistics of the batch as given, so a tile's "
               "output depends on the other tiles in its batch (the reference port's export)")
    else:
        why = f"{summary}: statistics do not depend on the other samples in a batch"
    return BnReport(dict(counts), kind, semantics, dependent, why)


def load_onnx_checked(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load an ONNX file without its external data, or raise :class:`UsageError` naming the file: missing, a
    folder, empty, not a protobuf, truncated (the graph uses tensors nothing defines), or a protobuf that is not
    an ONNX model (no IR version, no opset, no graph)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"ONNX file {path} is a folder; pass the .onnx file")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UsageError(f"ONNX file {path} does not exist; check the path (or export one with `vnet-accept "
                         "export`)") from None
    except OSError as exc:
        raise UsageError(f"ONNX file {path} cannot be read ({exc.strerror or exc}); check its permissions") from None
    if size == 0:
        raise UsageError(f"ONNX file {path} is empty (0 bytes); export it again or copy it again")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise UsageError(f"ONNX file {path} cannot be read ({exc.strerror or exc}); check its permissions") from None
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise UsageError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]}); the file is "
                         "truncated or not ONNX - export it again or copy it again") from None
    if proto.ir_version <= 0 or not proto.opset_import or not proto.HasField("graph") or not proto.graph.node:
        raise UsageError(f"{path} ({size:,} bytes) is not an ONNX model (no IR version, opset or graph nodes); "
                         "export it again or copy it again")
    undefined = _undefined_tensors(proto.graph)
    if undefined:
        raise UsageError(f"{path} is damaged: its graph uses {len(undefined)} tensor(s) that nothing defines (e.g. "
                         f"{undefined[0]!r}); the file is truncated or edited - export it again or copy it again")
    return proto


def _undefined_tensors(graph: onnx.GraphProto) -> list[str]:
    """Names a top-level node or graph output reads that no input, initializer or node output defines (nodes
    with subgraphs, which may read outer names, are left out)."""
    defined = {""} | {v.name for v in graph.input} | {i.name for i in graph.initializer}
    defined |= {i.values.name for i in graph.sparse_initializer}
    defined |= {name for node in graph.node for name in node.output}
    missing: list[str] = []
    for node in graph.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            continue
        missing += [name for name in node.input if name not in defined and name not in missing]
    missing += [o.name for o in graph.output if o.name not in defined and o.name not in missing]
    return missing


def inspect_onnx(path: str | os.PathLike[str]) -> OnnxInfo:
    path = Path(path)
    proto = load_onnx_checked(path)
    graph = proto.graph
    inits = {i.name for i in graph.initializer}
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    meta = {p.key: p.value for p in proto.metadata_props}
    bn = classify_bn(graph)
    warnings: list[str] = []
    claimed = meta.get(META_PREFIX + "bn_mode")
    if claimed and bn.semantics not in ("none", claimed):
        warnings.append(f"metadata says bn_mode={claimed} but the graph implements {bn.semantics}")
    warnings += _metadata_contradictions(meta, opset, graph, inits)
    shared = _shared_training_bn_state(graph, inits)
    if shared:
        warnings.append(f"{len(shared)} training-form BN running-stat initializers are shared with other nodes "
                        f"(e.g. {shared[0]}); ONNX Runtime overwrites them in place, corrupting outputs")
    return OnnxInfo(
        path=str(path), opset=opset, ir_version=proto.ir_version, producer=proto.producer_name,
        inputs=tuple(_tensor_info(v) for v in graph.input if v.name not in inits),
        outputs=tuple(_tensor_info(v) for v in graph.output), metadata=meta,
        op_counts=dict(Counter(n.op_type for n in graph.node)), bn=bn, warnings=tuple(warnings))


def _metadata_contradictions(meta: dict[str, str], opset: int, graph: onnx.GraphProto, inits: set[str]) -> list[str]:
    """What our own export metadata (``vnet_accept.*``) says that the graph contradicts: the opset, the width."""
    problems = []
    claimed_opset = meta.get(META_PREFIX + "opset")
    if claimed_opset is not None and claimed_opset.strip() != str(opset):
        problems.append(f"metadata says opset {claimed_opset} ({META_PREFIX}opset) but the graph imports opset "
                        f"{opset}: the file was edited or converted after export; export it again")
    claimed_width = meta.get(META_PREFIX + "width")
    first_conv = next((n for n in graph.node if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in inits),
                      None)
    if claimed_width is not None and first_conv is not None:
        weight = next(i for i in graph.initializer if i.name == first_conv.input[1])
        if weight.dims and str(weight.dims[0]) != claimed_width.strip():
            problems.append(f"metadata says width {claimed_width} ({META_PREFIX}width) but the first convolution has "
                            f"{weight.dims[0]} output channels")
    return problems


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    ttype = value.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type).name if ttype.elem_type else "?"
    dims: list[int | str | None] = []
    for d in ttype.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None)
    return TensorInfo(value.name, dtype, tuple(dims))


def _shared_training_bn_state(graph: onnx.GraphProto, inits: set[str]) -> list[str]:
    """Running-stat inputs of training-form BN whose initializer (followed through Identity nodes) other
    nodes also read: ONNX Runtime's in-place update would corrupt those readers."""
    identity_source = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}

    def source(name: str) -> str:
        while name in identity_source and name not in inits:
            name = identity_source[name]
        return name

    readers = Counter(source(name) for node in graph.node if node.op_type != "Identity" for name in node.input)
    return [node.input[slot] for node in graph.node if is_training_form(node) for slot in (3, 4)
            if source(node.input[slot]) in inits and readers[source(node.input[slot])] > 1]
