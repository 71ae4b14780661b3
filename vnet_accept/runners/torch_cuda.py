"""PyTorch on an NVIDIA GPU: the fast reference pass and the GPU side of "Ascend vs T4" (issue 6).

One runner, :class:`TorchCudaRunner`, behind the same contract as ONNX Runtime and PyTorch-CPU (``actual_input_1``
``(N, 1, D, H, W)`` float32 in, ``output1`` ``(N, D, H, W, 2)`` float32 log-probabilities out, whatever the compute
dtype). What it can do, each switch in :class:`CudaOptions`:

* ``dtype``: ``fp32`` (IEEE: TF32 explicitly off for cuDNN convolutions, which PyTorch enables by default),
  ``tf32``, ``fp16`` or ``bf16`` (the whole network cast, inputs cast on the device, outputs returned as float32);
* ``channels_last``: channels-last-3d (NDHWC) weights and activations;
* ``cudnn_benchmark``: cuDNN autotuning (algorithm search per input shape);
* ``fold_bn``: batch norm folded into the convolutions (:mod:`vnet_accept.runners.fold_bn`) — ``running`` only;
  ``None`` folds exactly when the BN mode is ``running``; ``True`` with ``batch``/``instance`` is refused;
* ``cuda_graph``: one CUDA graph per batch size seen (up to ``max_graphs``; other sizes run eagerly);
* ``compile_mode``: ``torch.compile`` (excludes ``cuda_graph``: the compile modes that pay off capture graphs
  themselves).

Every option keeps the BN semantics the runner was given: the model is a private copy (the caller's is never cast,
moved or folded), and a folded copy refuses to change mode. The cuDNN flags are set around each forward and
restored after it, so other runners in the process are unaffected.

The runner also accepts ``device="cpu"`` for the options that exist there (dtype fp32/bf16, channels-last,
folding): that is how the device-independent parts are tested on machines without a GPU. CUDA-only options on a
CPU device are refused, with the reason.

Registry names (:mod:`vnet_accept.runners.registry`, ``--backend``): ``torch-cuda`` (fp32), ``torch-cuda-tf32``,
``torch-cuda-fp16``, ``torch-cuda-bf16`` — each the tuned options at that dtype; they need the checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from vnet_accept.errors import UsageError
from vnet_accept.model.vnet import VNet, check_bn_mode
from vnet_accept.runners.fold_bn import check_foldable, fold_batch_norms
from vnet_accept.runners.torch_runner import TorchRunner

DTYPES = ("fp32", "tf32", "fp16", "bf16")
TORCH_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: The skip reason of every ``gpu`` test on a machine without a usable GPU.
CUDA_UNAVAILABLE = ("CUDA not available: torch.cuda.is_available() is False; run on a host with an NVIDIA GPU and "
                    "a CUDA build of torch")

def cuda_unavailable_reason() -> str | None:
    """``None`` when a CUDA device is usable, else why not (the message every ``gpu`` skip shows)."""
    if torch.cuda.is_available():
        return None
    build = f" (this torch {torch.__version__} is a CPU-only build)" if torch.version.cuda is None else ""
    return CUDA_UNAVAILABLE + build


@dataclass(frozen=True)
class CudaOptions:
    """How the CUDA runner runs the network. :meth:`eager` is plain PyTorch; the defaults are the tuned backend."""

    dtype: str = "fp32"
    channels_last: bool = True
    cudnn_benchmark: bool = True
    fold_bn: bool | None = None  # None: fold exactly when the BN mode is "running"
    cuda_graph: bool = True
    compile_mode: str | None = None
    max_graphs: int = 8

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise UsageError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if self.compile_mode is not None and self.compile_mode not in COMPILE_MODES:
            raise UsageError(f"unknown torch.compile mode {self.compile_mode!r}; choose one of "
                             f"{', '.join(COMPILE_MODES)}")
        if self.compile_mode is not None and self.cuda_graph:
            raise UsageError("cuda_graph and compile_mode exclude each other: torch.compile's reduce-overhead and "
                             "max-autotune modes capture CUDA graphs themselves; set cuda_graph=False")
        if self.max_graphs < 1:
            raise UsageError(f"max_graphs must be >= 1, got {self.max_graphs}")

    @classmethod
    def eager(cls, dtype: str = "fp32") -> CudaOptions:
        """Plain eager PyTorch: contiguous NCDHW, no autotuning, BN as a layer, no graphs."""
        return cls(dtype=dtype, channels_last=False, cudnn_benchmark=False, fold_bn=False, cuda_graph=False)

    @classmethod
    def tuned(cls, dtype: str = "fp32") -> CudaOptions:
        """Everything on: channels-last-3d, autotuning, BN folded where the mode allows it, CUDA graphs."""
        return cls(dtype=dtype)

    def resolve(self, bn_mode: str, device: str) -> CudaOptions:
        """These options with ``fold_bn`` decided for ``bn_mode``, checked against ``device``; raises
        :class:`UsageError` (naming the option) for a combination that cannot keep its promise."""
        check_bn_mode(bn_mode)
        fold = (bn_mode == "running") if self.fold_bn is None else self.fold_bn
        if fold:
            check_foldable(bn_mode)
        if not device.startswith("cuda"):
            cuda_only = [name for name, on in (("cuda_graph", self.cuda_graph),
                                               ("cudnn_benchmark", self.cudnn_benchmark),
                                               ("dtype=tf32", self.dtype == "tf32"),
                                               ("compile_mode", self.compile_mode is not None)) if on]
            if cuda_only:
                raise UsageError(f"{', '.join(cuda_only)} need{'s' if len(cuda_only) == 1 else ''} a CUDA device, "
                                 f"not {device!r}; turn {'it' if len(cuda_only) == 1 else 'them'} off for a CPU run")
            if self.dtype == "fp16":
                raise UsageError("dtype=fp16 on the CPU runs a reference convolution kernel (measured ~100× slower "
                                 "than fp32 here); use bf16 or fp32 on the CPU, fp16 on a GPU")
        return replace(self, fold_bn=fold)

    def describe(self) -> str:
        parts = [self.dtype]
        parts += [name for name, on in (("channels-last-3d", self.channels_last),
                                        ("cudnn-benchmark", self.cudnn_benchmark), ("bn-folded", self.fold_bn),
                                        ("cuda-graph", self.cuda_graph)) if on]
        if self.compile_mode:
            parts.append(f"compile={self.compile_mode}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Graph:
    graph: Any  # torch.cuda.CUDAGraph
    static_input: torch.Tensor
    static_output: torch.Tensor


class TorchCudaRunner(TorchRunner):
    """PyTorch on CUDA with :class:`CudaOptions`. ``device`` is ``"cuda"``, ``"cuda:N"`` or (for tests) ``"cpu"``.

    Options are checked at construction (a bad combination fails before any work); the GPU is touched only in
    :meth:`activate`.
    """

    backend = "torch-cuda"

    def __init__(self, model: VNet, bn_mode: str | None = None, device: str = "cuda",
                 options: CudaOptions | None = None, name: str | None = None,
                 spatial: tuple[int, int, int] | None = None) -> None:
        mode = bn_mode or model.bn_mode
        self.options = (options or CudaOptions()).resolve(mode, device)
        default_name = "torch-cuda" if device.startswith("cuda") else f"torch-{device.split(':')[0]}-tuned"
        super().__init__(model, bn_mode=mode, device=device, name=name or default_name, spatial=spatial)
        self.dtype = self.options.dtype
        self.compute_dtype = TORCH_DTYPES[self.options.dtype]
        self._graphs: dict[tuple[int, ...], _Graph] = {}
        self.eager_batches = 0  # batches run without a graph (graphs off, or more shapes than max_graphs)

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def activate_impl(self) -> None:
        if self.is_cuda:
            reason = cuda_unavailable_reason()
            if reason:
                raise UsageError(f"{self.name}: {reason}")
            if self.device == "cuda":
                self.device = f"cuda:{torch.cuda.current_device()}"
        self._graphs = {}
        self._module = self.prepare_module()
        if self.options.compile_mode:
            self._module = torch.compile(self._module, mode=self.options.compile_mode, dynamic=False)

    def deactivate_impl(self) -> None:
        self._graphs = {}
        self._module = None
        if self.is_cuda:
            torch.cuda.empty_cache()

    def prepare_module(self) -> torch.nn.Module:
        """A private copy of the model: BN mode set (or folded), cast, laid out, on the device."""
        if self.options.fold_bn:
            module: torch.nn.Module = fold_batch_norms(self.model, self.bn_mode)
        else:
            module = copy.deepcopy(self.model).eval().set_bn_mode(self.bn_mode)
        module = module.eval().to(device=self.device, dtype=self.compute_dtype)
        if self.options.channels_last:
            module = module.to(memory_format=torch.channels_last_3d)
        for p in module.parameters():
            p.requires_grad_(False)
        return module

    def describe(self) -> str:
        return f"{self.name} [bn_mode={self.bn_mode}, {self.options.describe()}, {self.device}]"

    # -- numerics and layout ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def numerics(self) -> Iterator[None]:
        """cuDNN flags of this runner for the duration of a forward (restored afterwards)."""
        if not self.is_cuda:
            yield
            return
        cudnn = torch.backends.cudnn
        saved = (cudnn.benchmark, cudnn.conv.fp32_precision)
        cudnn.benchmark = self.options.cudnn_benchmark
        cudnn.conv.fp32_precision = "tf32" if self.options.dtype == "tf32" else "ieee"
        try:
            yield
        finally:
            cudnn.benchmark, cudnn.conv.fp32_precision = saved

    def device_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, 1, D, H, W) on the device, in the compute dtype and memory format."""
        x = x.to(device=self.device, dtype=self.compute_dtype)
        return x.contiguous(memory_format=torch.channels_last_3d) if self.options.channels_last else x

    # -- inference -------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Host ``(N, 1, D, H, W)`` in, ``(N, D, H, W, 2)`` on the device out. With CUDA graphs the result is the
        graph's static output: valid until the next forward of the same batch shape (``infer`` copies it)."""
        with self.numerics():
            graph = self._graph_for(x) if self.options.cuda_graph else None
            if graph is None:
                self.eager_batches += 1
                return self._module(self.device_input(x))
            graph.static_input.copy_(x)
            graph.graph.replay()
            return graph.static_output

    def _graph_for(self, x: torch.Tensor) -> _Graph | None:
        key = tuple(x.shape)
        if key not in self._graphs:
            if len(self._graphs) >= self.options.max_graphs:
                return None
            self._graphs[key] = self._capture(x)
        return self._graphs[key]

    def _capture(self, x: torch.Tensor) -> _Graph:
        static_input = self.device_input(x).clone(memory_format=torch.preserve_format)
        # Warm up on a side stream before capturing (cuDNN autotuning and lazy initialisation must not be captured).
        stream = torch.cuda.Stream(device=self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                self._module(static_input)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = self._module(static_input)
        return _Graph(graph, static_input, static_output)

    def device_step(self, x: np.ndarray) -> Callable[[], None]:
        """A closure running one forward of ``x`` (N, 1, D, H, W) already resident on the device — no host
        transfer — for device-side timing (what trtexec's "GPU Compute" measures). Graphs are captured now."""
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate the runner before asking for a device step")
        host = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.inference_mode():
            if self.options.cuda_graph:
                with self.numerics():
                    graph = self._graph_for(host)
                if graph is not None:
                    graph.static_input.copy_(host)
                    return graph.graph.replay
            resident = self.device_input(host)

        def step() -> None:
            with torch.inference_mode(), self.numerics():
                self._module(resident)

        return step

    def graph_batch_shapes(self) -> list[tuple[int, ...]]:
        return sorted(self._graphs)


# --- registry: torch-cuda (fp32), torch-cuda-tf32, torch-cuda-fp16, torch-cuda-bf16 -------------------------------

def backend_name(dtype: str) -> str:
    return "torch-cuda" if dtype == "fp32" else f"torch-cuda-{dtype}"


def _factory(dtype: str) -> Callable[[Any], TorchCudaRunner]:
    def make(request: Any) -> TorchCudaRunner:
        model = request.model
        if model is None:
            from vnet_accept.model.checkpoint import load_checkpoint

            model = load_checkpoint(request.weights).build_model(request.bn_mode or "running")
        return TorchCudaRunner(model, request.bn_mode or model.bn_mode, request.device or "cuda",
                               CudaOptions.tuned(dtype), name=backend_name(dtype))

    return make


def _register() -> None:
    from vnet_accept.runners.registry import BackendSpec, register_backend

    for dtype in DTYPES:
        register_backend(BackendSpec(
            backend_name(dtype), f"PyTorch on an NVIDIA GPU, {dtype}, tuned (channels-last-3d, cuDNN autotuning, BN "
            "folded for running BN, a CUDA graph per batch size; needs the checkpoint)", "weights", _factory(dtype)),
            replace=True)


_register()
