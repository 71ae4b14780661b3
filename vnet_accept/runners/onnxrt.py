"""ONNX Runtime runner (CPU by default).

Training-form BN (the port's export, our ``batch`` mode): ONNX Runtime's BatchNormalization kernel (opset 9–13)
aliases the running-statistic inputs to its outputs and overwrites them on every run. Its graph optimisations
merge initializers of equal value (common-subexpression elimination), so that write can land in a tensor other
nodes read — a BN scale or bias — and outputs drift from run to run (measured: 3e-3, then 6e-3, on a
default-initialised VNet). For such graphs the runner disables graph optimisation, which makes ONNX Runtime
agree with PyTorch to ~1e-7 again; inference-form graphs keep full optimisation.

Threads: ``threads`` when given; else ONNX Runtime's default (the machine's physical cores), capped at the CPUs
the process may use. ONNX Runtime ignores the affinity mask (measured, onnxruntime 1.32: under ``taskset -c 0``
on 2 cores it still starts 2 intra-op threads), so a pinned process, or a CI container's cpuset, would otherwise
run more threads than it has CPUs. PyTorch's default already follows the mask.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vnet_accept.errors import UsageError
from vnet_accept.runners.base import Runner, TensorSpec

_ORT_TYPES = {f"tensor({ort})": np.dtype(np_type) for ort, np_type in (
    ("float", np.float32), ("float16", np.float16), ("double", np.float64), ("bool", np.bool_),
    ("int8", np.int8), ("int16", np.int16), ("int32", np.int32), ("int64", np.int64),
    ("uint8", np.uint8), ("uint16", np.uint16), ("uint32", np.uint32), ("uint64", np.uint64))}


class OnnxRuntimeRunner(Runner):
    backend = "onnxrt"

    def __init__(self, model: str | os.PathLike[str] | bytes, name: str | None = None,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",), threads: int | None = None,
                 bn_mode: str | None = None) -> None:
        device = "cpu" if providers[0] == "CPUExecutionProvider" else providers[0]
        super().__init__(name or f"onnxrt-{device.replace('ExecutionProvider', '').lower()}",
                         bn_mode=bn_mode if bn_mode else _bn_mode_from_metadata(model), dtype="fp32", device=device)
        self.model, self.providers, self.threads = model, providers, threads
        self.session = None

    def activate_impl(self) -> None:
        import onnxruntime as ort

        if not isinstance(self.model, bytes):
            from vnet_accept.export.inspect import load_onnx_checked

            load_onnx_checked(self.model)  # an empty, truncated or non-ONNX file: one line naming it
        opts = ort.SessionOptions()
        self.optimisation = "all"
        if _has_training_form_bn(self.model):
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            self.optimisation = "disabled (training-form BN)"
        threads = self.threads or _pinned_cpus()
        if threads:
            opts.intra_op_num_threads = threads
        model = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self.session = ort.InferenceSession(model, sess_options=opts, providers=list(self.providers))
        except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/… types
            where = "the in-memory model" if isinstance(self.model, bytes) else f"ONNX file {self.model}"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise UsageError(f"{self.name}: ONNX Runtime cannot load {where} ({first}); export it again, or check "
                             "that it is the VNet export") from None

    def deactivate_impl(self) -> None:
        self.session = None

    def input_metadata_impl(self) -> dict[str, TensorSpec]:
        specs = {}
        for arg in self.session.get_inputs():
            shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
            if arg.type not in _ORT_TYPES:  # never guess: a wrong guess rejects a correct feed with a wrong reason
                raise UsageError(f"{self.name}: input {arg.name} has ONNX type {arg.type}, which the input check "
                                 "cannot map to a numpy dtype; run with check=False")
            specs[arg.name] = TensorSpec(_ORT_TYPES[arg.type], shape)
        return specs

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, feed)))


def _pinned_cpus() -> int | None:
    """The CPUs the process may use when that is fewer than the machine has (else ``None``: ORT's default)."""
    from vnet_accept.io_utils import available_cpus

    cpus = available_cpus()
    return cpus if cpus < (os.cpu_count() or cpus) else None


def _has_training_form_bn(model: str | os.PathLike[str] | bytes) -> bool:
    import onnx

    from vnet_accept.export.onnx_export import is_training_form

    proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model),
                                                                                  load_external_data=False)
    return any(is_training_form(node) for node in proto.graph.node)


def _bn_mode_from_metadata(model: str | os.PathLike[str] | bytes) -> str | None:
    """Our exports carry their BN mode; for anything else, read the graph's BN semantics."""
    if isinstance(model, bytes):
        return None
    from vnet_accept.export.inspect import inspect_onnx

    try:
        info = inspect_onnx(Path(model))
    except Exception:  # noqa: BLE001 - activation will report the real problem
        return None
    return info.metadata.get("vnet_accept.bn_mode") or (info.bn.semantics if info.bn.semantics != "none" else None)
