"""Where an ONNX file starts to disagree with the PyTorch model: the first VNet layer, in the port's module names
(``down_tr64.ops.0.conv1``, ``up_tr128.up_conv`` …), whose output differs beyond the tolerance, and the layer
before it that still agrees.

Unlike the other judgements this one runs something (only when a parity criterion already failed): a copy of the
graph with intermediate tensors exposed as extra outputs in ONNX Runtime, and the PyTorch model with forward hooks
on every leaf module, on the same input.

**Which ONNX tensor is which module's output.** The TorchScript exporter names every node after the module scope
it was traced in: ``/down_tr64/ops/ops.0/conv1/Conv`` is the convolution of module ``down_tr64.ops.0.conv1``
(a ``Sequential`` child shows as ``ops`` then ``ops.0``). A leaf module's output is the first output of the last
node of its scope. When the exporter folded a batch norm into the convolution before it (eval-mode ``running``
exports do, SPEC §3), the BN has no node: the convolution's output is then compared with the BN's PyTorch output
too, and the better match counts. Files whose node names carry no scopes (renamed or re-optimised) are mapped by
the order of their convolutions instead: the model's ``Conv3d``/``ConvTranspose3d`` modules in execution order
against the graph's ``Conv``/``ConvTranspose`` nodes in graph order, when the two sequences have the same kinds.

**Agreeing.** A layer agrees when max |Δ| <= ``atol`` × max(1, max |PyTorch output|): absolute for the
log-probability-sized values at the end, relative for the large activations inside (fp32 round-off between the two
runtimes is ~1e-6 of the values' size).

Arrays: input ``(N, 1, D, H, W)`` float32; intermediate outputs ``(N, C, D', H', W')`` float32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.judge.criterion import Criterion

SCOPED_OPS_SKIPPED = ("Identity", "Constant", "Shape", "Gather", "Unsqueeze")


@dataclass(frozen=True)
class LayerComparison:
    """One module's output, PyTorch against the file: ``limit`` is the tolerance in force there."""

    module: str
    tensor: str
    shape: tuple[int, ...]
    max_abs: float
    limit: float
    folded: str | None = None  # the BN folded into this convolution, whose PyTorch output it matched

    @property
    def agrees(self) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_abs <= self.limit

    @property
    def label(self) -> str:
        return f"{self.module} (+ {self.folded.rsplit('.', 1)[-1]} folded)" if self.folded else self.module

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "tensor": self.tensor, "shape": list(self.shape), "max_abs": self.max_abs,
                "limit": self.limit, "agrees": self.agrees, "folded": self.folded}


@dataclass(frozen=True)
class Localisation:
    """The layers compared in execution order; ``mapping`` says how tensors were matched to modules; ``problem`` why
    nothing could be compared."""

    layers: tuple[LayerComparison, ...] = ()
    mapping: str = ""
    problem: str | None = None
    unmapped: tuple[str, ...] = field(default=())

    @property
    def first_diverging(self) -> LayerComparison | None:
        return next((layer for layer in self.layers if not layer.agrees), None)

    @property
    def last_agreeing(self) -> LayerComparison | None:
        """The layer just before the first diverging one (it agrees, by construction)."""
        first = self.first_diverging
        if first is None:
            return self.layers[-1] if self.layers else None
        index = self.layers.index(first)
        return self.layers[index - 1] if index else None

    def describe(self) -> str:
        """One phrase for a failure's first line."""
        if self.problem:
            return f"layer not localised: {self.problem}"
        first, before = self.first_diverging, self.last_agreeing
        if first is None:
            last = before.label if before else "?"
            return (f"every one of {len(self.layers)} layers agrees up to {last}: the difference arises after it "
                    "(output transpose / log-softmax)")
        where = (f"; {before.label} before it agrees (max |Δ| {before.max_abs:.3g})" if before else
                 " - the first layer of the network: the input or in_tr's convolution differs")
        return (f"first diverging layer {first.label} (max |Δ| {first.max_abs:.3g} > {first.limit:.3g} at its output "
                f"{first.shape}){where}")

    def to_dict(self) -> dict[str, Any]:
        first, before = self.first_diverging, self.last_agreeing
        return {"mapping": self.mapping, "problem": self.problem,
                "first_diverging": first.module if first else None,
                "last_agreeing": before.module if before else None,
                "layers": [layer.to_dict() for layer in self.layers], "unmapped": list(self.unmapped)}


def module_of_node(node_name: str, modules: set[str] | dict[str, Any]) -> str | None:
    """The module a TorchScript-exported node was traced in (``/down_tr64/ops/ops.0/conv1/Conv`` ->
    ``down_tr64.ops.0.conv1``), or None when the name carries no scope of a module in ``modules``."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) < 2:
        return None
    path: list[str] = []
    for comp in parts[:-1]:
        if path and comp.startswith(path[-1] + "."):
            path[-1] = comp  # a Sequential child: "ops" then "ops.0"
        else:
            path.append(comp)
    name = ".".join(path)
    return name if name in modules else None


def _leaf_modules(model: Any) -> dict[str, Any]:
    return {name: m for name, m in model.named_modules() if name and not list(m.children())}


def _torch_outputs(model: Any, bn_mode: str, inputs: np.ndarray, wanted: set[str]) -> tuple[dict[str, np.ndarray],
                                                                                          list[str]]:
    """PyTorch outputs of the leaf modules ``wanted`` and the execution order of every leaf module."""
    import torch

    outputs: dict[str, np.ndarray] = {}
    order: list[str] = []
    handles = []

    def hook(name: str):
        def record(_module, _args, output):
            order.append(name)
            if name in wanted and isinstance(output, torch.Tensor):
                outputs[name] = output.detach().cpu().numpy().copy()
        return record

    for name, module in _leaf_modules(model).items():
        handles.append(module.register_forward_hook(hook(name)))
    previous_mode = model.bn_mode
    try:
        model.eval().set_bn_mode(bn_mode)
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)))
    finally:
        for handle in handles:
            handle.remove()
        model.set_bn_mode(previous_mode)
    return outputs, order


def _scope_points(graph: Any, leaves: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{module: (tensor, op type)}``: the first output of the last node of each leaf module's scope."""
    points: dict[str, tuple[str, str]] = {}
    for node in graph.node:
        if node.op_type in SCOPED_OPS_SKIPPED or not node.output or not node.output[0]:
            continue
        module = module_of_node(node.name, leaves)
        if module is not None:
            points[module] = (node.output[0], node.op_type)
    return points


def _order_points(graph: Any, leaves: dict[str, Any], order: list[str]) -> dict[str, tuple[str, str]] | None:
    """The fallback: convolutions matched by order (None when the graph's convolutions do not line up)."""
    import torch

    convs = [n for n in order if isinstance(leaves[n], (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    nodes = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]
    kinds = ["ConvTranspose" if isinstance(leaves[n], torch.nn.ConvTranspose3d) else "Conv" for n in convs]
    if not convs or kinds != [n.op_type for n in nodes]:
        return None
    return {module: (node.output[0], node.op_type) for module, node in zip(convs, nodes)}


def localise(onnx_path: str | os.PathLike[str], model: Any, bn_mode: str, inputs: np.ndarray, *,
             atol: float) -> Localisation:
    """Compare every mapped layer's output of ``onnx_path`` (ONNX Runtime) with ``model`` in ``bn_mode`` (PyTorch) on
    ``inputs`` (see the module docstring). Never raises for a file it cannot map: ``problem`` says why."""
    import onnx
    from onnx import TensorProto, helper

    from vnet_accept.runners.onnxrt import OnnxRuntimeRunner

    path = Path(onnx_path)
    try:
        proto = onnx.load(str(path))  # with its external data, if any: the copy must be self-contained
    except Exception as exc:  # noqa: BLE001 - a file ONNX Runtime ran a moment ago; say what broke
        return Localisation(problem=f"{path} could not be reloaded ({type(exc).__name__}: {exc})")
    leaves = _leaf_modules(model)
    scoped = _scope_points(proto.graph, leaves)
    # Execution order does not depend on the input or the BN semantics: one 16³ sample in running mode gives it.
    _, order = _torch_outputs(model, "running", inputs[:1, :, :16, :16, :16] if _tiny_ok(inputs) else inputs[:1], set())
    convs_total = sum(1 for n in order if type(leaves[n]).__name__ in ("Conv3d", "ConvTranspose3d"))
    convs_scoped = sum(1 for n in scoped if type(leaves[n]).__name__ in ("Conv3d", "ConvTranspose3d"))
    if convs_total and convs_scoped * 2 >= convs_total:
        points, mapping = scoped, "node names (TorchScript exporter scopes)"
    else:
        points = _order_points(proto.graph, leaves, order)
        mapping = "convolutions in execution order (node names carry no module scopes)"
        if points is None:
            return Localisation(mapping="none", problem=f"the node names of {path.name} carry no module scopes and "
                                "its convolutions do not line up with the model's")
    # A BN with no node of its own was folded into the convolution executed just before it.
    folded: dict[str, str] = {}
    for before, after in zip(order, order[1:]):
        if before in points and "BatchNorm" in type(leaves[after]).__name__ and after not in points \
                and points[before][1] in ("Conv", "ConvTranspose"):
            folded[before] = after
    wanted = set(points) | set(folded.values())
    reference, order = _torch_outputs(model, bn_mode, inputs, wanted)
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    present = {o.name for o in copy.graph.output}
    for tensor, _ in points.values():
        if tensor not in present:
            copy.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None))
            present.add(tensor)
    feed_name = next(i.name for i in copy.graph.input if i.name not in {t.name for t in copy.graph.initializer})
    with OnnxRuntimeRunner(copy.SerializeToString(), name="onnxrt-localise") as runner:
        obtained = runner.infer({feed_name: np.ascontiguousarray(inputs, dtype=np.float32)}, check=False)
    layers: list[LayerComparison] = []
    seen: set[str] = set()
    for module in order:
        if module not in points or module in seen:
            continue
        seen.add(module)
        tensor = points[module][0]
        got = obtained.get(tensor)
        candidates = [(module, None)] + ([(folded[module], folded[module])] if module in folded else [])
        best = None
        for ref_name, fold in candidates:
            ref = reference.get(ref_name)
            if got is None or ref is None or got.shape != ref.shape:
                continue
            with np.errstate(invalid="ignore", over="ignore"):
                diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if np.isfinite(got).all() else np.inf
            limit = atol * max(1.0, float(np.max(np.abs(ref))))
            comparison = LayerComparison(module, tensor, tuple(ref.shape), diff, limit, fold)
            if best is None or (comparison.agrees, -comparison.max_abs / comparison.limit) > (
                    best.agrees, -best.max_abs / best.limit):
                best = comparison
        if best is not None:
            layers.append(best)
    unmapped = tuple(n for n in order if n not in points and n not in folded.values()
                     and type(leaves[n]).__name__ not in ("Dropout3d", "Identity"))
    if not layers:
        return Localisation(mapping=mapping, problem=f"no layer of {path.name} could be compared (shapes differ)")
    return Localisation(tuple(layers), mapping, None, unmapped)


def _tiny_ok(inputs: np.ndarray) -> bool:
    return inputs.ndim == 5 and all(s >= 16 for s in inputs.shape[2:])


def annotate(criterion: Criterion, localisation: Localisation) -> Criterion:
    """A failed parity criterion with the localisation in its first line (after the comparison's name), its reason and
    its details (``details["localisation"]``)."""
    phrase = localisation.describe()
    message = criterion.message or criterion.headline()
    first, _, rest = message.partition("\n")
    verdict_and_name, sep, numbers = first.partition(": ")
    first = f"{verdict_and_name}: {phrase}; {numbers}" if sep else f"{first} - {phrase}"
    criterion.message = first + ("\n" + rest if rest else "")
    criterion.reason = f"{phrase}; {criterion.reason}" if criterion.reason else phrase
    criterion.details["localisation"] = localisation.to_dict()
    return criterion
