"""The runner contract every backend follows (ONNX Runtime, PyTorch CPU/CUDA, the Ascend tools).

Modelled on Polygraphy's runners: the public ``activate`` / ``infer`` / ``deactivate`` do the state checks,
input validation and timing; a backend overrides only the ``*_impl`` methods. Feeds and results are ordered
``name -> array`` dicts. Runners are context managers; devices are touched only in ``activate``.

Array convention: the model input ``actual_input_1`` is ``(N, 1, D, H, W)`` float32 NCDHW (normalised CT); the
output ``output1`` is ``(N, D, H, W, 2)`` float32 log-probabilities, class 1 = lung.
"""

from __future__ import annotations

import abc
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vnet_accept.errors import UsageError


@dataclass(frozen=True)
class TensorSpec:
    """Expected dtype and shape of an input; ``None`` in the shape means any size (dynamic axis)."""

    dtype: np.dtype
    shape: tuple[int | None, ...]


class InputMismatch(UsageError):
    """A feed that does not fit the model: names the tensor, what was received and what was expected."""


def check_inputs(feed: dict[str, np.ndarray], expected: dict[str, TensorSpec]) -> None:
    """Raise :class:`InputMismatch` unless ``feed`` has exactly the expected names, dtypes and shapes."""
    missing = [name for name in expected if name not in feed]
    extra = [name for name in feed if name not in expected]
    if missing or extra:
        raise InputMismatch(f"input names differ: missing {missing}, unexpected {extra}; "
                            f"the model takes {list(expected)}")
    for name, spec in expected.items():
        array = feed[name]
        if not isinstance(array, np.ndarray):
            raise InputMismatch(f"Input tensor: {name} | Received a {type(array).__name__}, expected a numpy array")
        if array.dtype != spec.dtype:
            raise InputMismatch(f"Input tensor: {name} | Received dtype {array.dtype} | Expected {spec.dtype} "
                                "(inputs are float32; did the data step write float64 or int16?)")
        shape_ok = len(array.shape) == len(spec.shape) and all(
            want is None or want == got for want, got in zip(spec.shape, array.shape))
        if not shape_ok:
            shown = tuple("?" if d is None else d for d in spec.shape)
            raise InputMismatch(f"Input tensor: {name} | Received shape {array.shape} | Expected {shown} "
                                "(NCDHW: N, 1 channel, D=64, H=80, W=80 for a tile)")


class Runner(abc.ABC):
    """Base class. Subclasses set ``backend`` and implement the ``*_impl`` methods.

    Attributes describing the numbers a runner produces (they go into every parity record's basis):
    ``bn_mode`` (batch | instance | running, or ``None`` when the backend decides, e.g. an OM), ``dtype``
    (compute precision, e.g. "fp32"), ``device`` (e.g. "cpu", "cuda:0", "npu:0").
    """

    backend: str = "runner"

    def __init__(self, name: str | None = None, bn_mode: str | None = None, dtype: str = "fp32",
                 device: str = "cpu") -> None:
        self.name = name or self.backend
        self.bn_mode, self.dtype, self.device = bn_mode, dtype, device
        self.is_active = False
        self.inference_times_s: list[float] = []

    # -- lifecycle -------------------------------------------------------------------------------------------
    def activate(self) -> Runner:
        if self.is_active:
            warnings.warn(f"{self.name}: activate() called on an already active runner; ignored", stacklevel=2)
            return self
        self.activate_impl()
        self.is_active = True
        return self

    def deactivate(self) -> None:
        if not self.is_active:
            warnings.warn(f"{self.name}: deactivate() called on an inactive runner; ignored", stacklevel=2)
            return
        try:
            self.deactivate_impl()
        finally:
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def __del__(self) -> None:
        if getattr(self, "is_active", False):
            warnings.warn(f"{self.name} was never deactivated; use it as a context manager", stacklevel=1)

    # -- inference -------------------------------------------------------------------------------------------
    def input_metadata(self) -> dict[str, TensorSpec]:
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate the runner before asking for its inputs")
        return self.input_metadata_impl()

    def infer(self, feed: dict[str, np.ndarray], check: bool = True) -> OrderedDict[str, np.ndarray]:
        """Run one batch. Only the backend call is timed (appended to ``inference_times_s``)."""
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate the runner (or use it as a context manager) first")
        if check:
            check_inputs(feed, self.input_metadata_impl())
        start = time.perf_counter()
        outputs = self.infer_impl(feed)
        self.inference_times_s.append(time.perf_counter() - start)
        return OrderedDict(outputs)

    def describe(self) -> str:
        """The basis of every number this runner produces, e.g. ``onnxrt-cpu [bn_mode=running, fp32, cpu]``."""
        return f"{self.name} [bn_mode={self.bn_mode or 'as compiled'}, {self.dtype}, {self.device}]"

    # -- backend hooks ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    def activate_impl(self) -> None: ...

    def deactivate_impl(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    def input_metadata_impl(self) -> dict[str, TensorSpec]: ...

    @abc.abstractmethod
    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...
