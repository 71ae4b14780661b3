"""Inference backends by name: ``ort-cpu``, ``torch-cpu``, and whatever other modules register.

A backend is a :class:`BackendSpec`: a name, one line of description, what it needs (an ONNX file or a PyTorch
checkpoint/model) and a factory turning a :class:`BackendRequest` into a :class:`~vnet_accept.runners.base.Runner`.
``vnet-accept infer --backend NAME`` and the accuracy tests (``--backend``) go through :func:`create_runner`.

A new backend is one file plus its registration: the module calls :func:`register_backend` at import time and is
listed in :data:`EXTENSION_MODULES` (imported on first use, so nothing heavy loads before a backend is asked for)::

    # vnet_accept/runners/torch_cuda.py
    from vnet_accept.runners.registry import BackendSpec, register_backend
    register_backend(BackendSpec("torch-cuda", "PyTorch on CUDA", needs="weights", factory=_make))
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnet_accept.errors import UsageError
from vnet_accept.runners.base import Runner

#: Modules that register more backends when imported (the registration of a new backend is one line here).
EXTENSION_MODULES = ("vnet_accept.runners.torch_cuda", "vnet_accept.ascend.runner")
NEEDS = ("onnx", "weights")


@dataclass(frozen=True)
class BackendRequest:
    """What a factory may use: ``onnx`` (path), ``weights`` (checkpoint path) or an already built ``model``
    (a :class:`~vnet_accept.model.vnet.VNet`), the BN mode for PyTorch backends, CPU threads, a device."""

    onnx: Path | None = None
    weights: Path | None = None
    model: Any = None
    bn_mode: str | None = None
    threads: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class BackendSpec:
    name: str
    description: str
    needs: str  # "onnx" or "weights" (a checkpoint or a model)
    factory: Callable[[BackendRequest], Runner]

    def __post_init__(self) -> None:
        if self.needs not in NEEDS:
            raise ValueError(f"backend {self.name}: needs must be one of {NEEDS}, got {self.needs!r}")


_BACKENDS: dict[str, BackendSpec] = {}
_extensions_loaded = False


def register_backend(spec: BackendSpec, replace: bool = False) -> BackendSpec:
    """Add a backend; registering a taken name again is an error unless ``replace``."""
    if spec.name in _BACKENDS and not replace:
        raise ValueError(f"backend {spec.name!r} is already registered")
    _BACKENDS[spec.name] = spec
    return spec


def _load_extensions() -> None:
    global _extensions_loaded
    if _extensions_loaded:
        return
    _extensions_loaded = True
    for module in EXTENSION_MODULES:
        importlib.import_module(module)


def backend_names() -> tuple[str, ...]:
    _load_extensions()
    return tuple(_BACKENDS)


def get_backend(name: str) -> BackendSpec:
    """The backend called ``name``; a :class:`UsageError` listing the known ones (and the closest) otherwise."""
    _load_extensions()
    try:
        return _BACKENDS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_BACKENDS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(_BACKENDS)}{hint}") from None


def create_runner(name: str, *, onnx: str | os.PathLike[str] | None = None,
                  weights: str | os.PathLike[str] | None = None, model: Any = None, bn_mode: str | None = None,
                  threads: int | None = None, device: str | None = None) -> Runner:
    """Build the runner of backend ``name`` (not yet activated) from what it needs, or say what is missing."""
    spec = get_backend(name)
    if spec.needs == "onnx" and onnx is None:
        raise UsageError(f"backend {name} runs an ONNX file: pass --onnx FILE")
    if spec.needs == "weights" and weights is None and model is None:
        raise UsageError(f"backend {name} runs the PyTorch model: pass --weights CHECKPOINT (and --bn-mode); an "
                         "ONNX file cannot be turned back into the PyTorch model")
    request = BackendRequest(Path(onnx) if onnx is not None else None,
                             Path(weights) if weights is not None else None, model, bn_mode, threads, device)
    return spec.factory(request)


def runner_width(runner: Runner) -> int | None:
    """The VNet base width behind a runner (16 = the real VNet) for FLOP counts, or ``None`` if unknown."""
    model = getattr(runner, "model", None)
    width = getattr(model, "width", None)
    if isinstance(width, int):
        return width
    if isinstance(model, (str, os.PathLike)) and str(model).endswith(".onnx"):
        from vnet_accept.export.inspect import inspect_onnx

        try:
            text = inspect_onnx(Path(model)).metadata.get("vnet_accept.width")
        except Exception:  # noqa: BLE001 - a foreign or unreadable ONNX simply has no known width
            return None
        return int(text) if text and text.isdigit() else None
    return None


# --- built-in backends ---------------------------------------------------------------------------------------------

def _ort_cpu(request: BackendRequest) -> Runner:
    from vnet_accept.runners.onnxrt import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(request.onnx, name="ort-cpu", threads=request.threads)
    if request.bn_mode and runner.bn_mode and request.bn_mode != runner.bn_mode:
        raise UsageError(f"{request.onnx} implements BN mode {runner.bn_mode}, not {request.bn_mode}: an ONNX carries "
                         "its own semantics (--bn-mode applies to PyTorch backends); export it in the mode wanted")
    return runner


def _torch_cpu(request: BackendRequest) -> Runner:
    from vnet_accept.runners.torch_runner import TorchRunner

    model = request.model
    if model is None:
        from vnet_accept.model.checkpoint import load_checkpoint

        model = load_checkpoint(request.weights).build_model(request.bn_mode or "running")
    if request.threads:
        import torch

        torch.set_num_threads(request.threads)
    return TorchRunner(model, bn_mode=request.bn_mode or model.bn_mode, device="cpu", name="torch-cpu")


register_backend(BackendSpec("ort-cpu", "ONNX Runtime, CPU execution provider (runs the exported ONNX)", "onnx",
                             _ort_cpu))
register_backend(BackendSpec("torch-cpu", "PyTorch on the CPU (the reference model; needs the checkpoint)",
                             "weights", _torch_cpu))
