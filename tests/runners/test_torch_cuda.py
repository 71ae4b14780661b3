"""The CUDA runner's device-independent behaviour, verified on the CPU: option validation, BN semantics kept by
every option, channels-last-3d and folding on the CPU, the reduced-precision path (bf16), the cuDNN flag scope,
registry names. What needs a GPU (graphs, TF32, fp16 kernels, autotuning) is in vnet_accept/checks/test_gpu.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vnet_accept.compare import compare_outputs
from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.errors import UsageError
from vnet_accept.export.onnx_export import state_dict_hash
from vnet_accept.model.checkpoint import random_state_dict
from vnet_accept.model.vnet import VNet, VNetBatchNorm3d
from vnet_accept.runners.fold_bn import BNFoldError
from vnet_accept.runners.registry import backend_names, create_runner
from vnet_accept.runners.torch_cuda import (
    CUDA_UNAVAILABLE,
    DTYPES,
    CudaOptions,
    TorchCudaRunner,
    cuda_unavailable_reason,
)
from vnet_accept.runners.torch_runner import TorchRunner
from vnet_accept.tolerances import REDUCED_PRECISION_TOLERANCE, Tolerance, gpu_invariance_tolerance

pytestmark = pytest.mark.usefixtures("one_thread")

WIDTH = 4
SPATIAL = (16, 32, 32)
#: What a CPU run can exercise: everything but autotuning, graphs, TF32 and fp16.
CPU_TUNED = CudaOptions(channels_last=True, cudnn_benchmark=False, fold_bn=None, cuda_graph=False)


@pytest.fixture(scope="module")
def narrow_model() -> VNet:
    model = VNet(width=WIDTH, bn_mode="running")
    model.load_state_dict(random_state_dict(seed=6, width=WIDTH, calibrate=False))
    return model.eval()


@pytest.fixture(scope="module")
def feed() -> dict[str, np.ndarray]:
    return {"actual_input_1": ct_like_batch(3, SPATIAL, seed=21)}


def _plain(model: VNet, bn_mode: str, feed: dict[str, np.ndarray]) -> np.ndarray:
    with TorchRunner(model, bn_mode) as runner:
        return runner.infer(feed)["output1"]


# -- options ---------------------------------------------------------------------------------------------------------

def test_defaults_are_the_tuned_backend_and_eager_is_plain_pytorch():
    tuned = CudaOptions().resolve("running", "cuda")
    assert (tuned.channels_last, tuned.cudnn_benchmark, tuned.fold_bn, tuned.cuda_graph) == (True, True, True, True)
    assert tuned.describe() == "fp32, channels-last-3d, cudnn-benchmark, bn-folded, cuda-graph"
    eager = CudaOptions.eager("fp16").resolve("running", "cuda")
    assert eager.describe() == "fp16" and not eager.fold_bn


@pytest.mark.parametrize("bn_mode, folded", [("running", True), ("batch", False), ("instance", False)])
def test_automatic_folding_follows_the_bn_mode(bn_mode, folded):
    assert CudaOptions().resolve(bn_mode, "cuda").fold_bn is folded


@pytest.mark.parametrize("bn_mode", ["batch", "instance"])
def test_explicit_folding_is_refused_for_data_dependent_statistics(narrow_model, bn_mode):
    with pytest.raises(BNFoldError, match="BN folding needs fixed statistics"):
        CudaOptions(fold_bn=True).resolve(bn_mode, "cuda")
    with pytest.raises(BNFoldError):  # at construction, before any device is touched
        TorchCudaRunner(narrow_model, bn_mode, "cuda", CudaOptions(fold_bn=True))


@pytest.mark.parametrize("kwargs, message", [
    (dict(dtype="fp64"), "unknown dtype 'fp64'; choose one of fp32, tf32, fp16, bf16"),
    (dict(compile_mode="fast"), "unknown torch.compile mode 'fast'"),
    (dict(compile_mode="max-autotune"), "cuda_graph and compile_mode exclude each other"),
    (dict(max_graphs=0), "max_graphs must be >= 1"),
])
def test_bad_options_fail_at_construction(kwargs, message):
    with pytest.raises(UsageError, match=message):
        CudaOptions(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "cuda_graph, cudnn_benchmark need a CUDA device, not 'cpu'"),
    (dict(cudnn_benchmark=False), "cuda_graph needs a CUDA device"),
    (dict(cudnn_benchmark=False, cuda_graph=False, dtype="tf32"), "dtype=tf32 needs a CUDA device"),
    (dict(cudnn_benchmark=False, cuda_graph=False, dtype="fp16"), "fp16 on the CPU runs a reference convolution"),
])
def test_cuda_only_options_are_refused_on_the_cpu(kwargs, message):
    with pytest.raises(UsageError, match=message):
        CudaOptions(**kwargs).resolve("running", "cpu")


# -- numerics on the CPU -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bn_mode", ["running", "batch", "instance"])
def test_channels_last_and_folding_keep_the_bn_semantics(narrow_model, feed, bn_mode):
    """Same numbers as the plain PyTorch runner in the same mode, and the same batch (in)dependence."""
    expected = _plain(narrow_model, bn_mode, feed)
    with TorchCudaRunner(narrow_model, bn_mode, "cpu", CPU_TUNED) as runner:
        assert runner.options.fold_bn is (bn_mode == "running")
        obtained = runner.infer(feed)["output1"]
        alone = runner.infer({"actual_input_1": feed["actual_input_1"][:1]})["output1"]
    # The foundation's parity tolerance: channels-last reorders the reductions of the batch/instance statistics.
    result = compare_outputs(obtained, expected, Tolerance(max_abs=1e-4, max_flip_fraction=0.0),
                             name=f"tuned-cpu vs torch-cpu [{bn_mode}]")
    assert result.passed, result.report()
    batch_effect = float(np.abs(alone[0] - obtained[0]).max())
    if bn_mode == "batch":
        assert batch_effect > 1e-3  # the port's semantics: a sample's output depends on its batch
    else:
        assert batch_effect < 1e-5


def test_bf16_runs_in_bf16_and_returns_float32(narrow_model, feed):
    expected = _plain(narrow_model, "running", feed)
    options = CudaOptions(dtype="bf16", channels_last=True, cudnn_benchmark=False, cuda_graph=False)
    with TorchCudaRunner(narrow_model, "running", "cpu", options) as runner:
        assert next(runner._module.parameters()).dtype == torch.bfloat16
        obtained = runner.infer(feed)["output1"]
    assert obtained.dtype == np.float32 and obtained.shape == expected.shape
    result = compare_outputs(obtained, expected, REDUCED_PRECISION_TOLERANCE["bf16"], name="bf16 vs fp32")
    assert result.passed, result.report()
    assert result.max_abs > 1e-4  # it really ran in reduced precision


def test_the_callers_model_is_never_cast_moved_or_folded(narrow_model, feed):
    # The shared fixture's mode is whatever an earlier test's TorchRunner left (xdist changes the order): set one the
    # runner below does not use, so a runner that switched the caller's model would show.
    narrow_model.set_bn_mode("instance")
    before = state_dict_hash(narrow_model)
    options = CudaOptions(dtype="bf16", channels_last=True, cudnn_benchmark=False, cuda_graph=False)
    with TorchCudaRunner(narrow_model, "running", "cpu", options) as runner:
        runner.infer(feed)
    assert state_dict_hash(narrow_model) == before
    assert narrow_model.bn_mode == "instance"
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in narrow_model.parameters())
    assert sum(isinstance(m, VNetBatchNorm3d) for m in narrow_model.modules()) == 24


def test_device_step_runs_a_resident_forward(narrow_model, feed):
    with TorchCudaRunner(narrow_model, "running", "cpu", CPU_TUNED) as runner:
        step = runner.device_step(feed["actual_input_1"])
        assert step() is None
        assert runner.graph_batch_shapes() == []  # graphs are off on the CPU
    with pytest.raises(RuntimeError, match="activate the runner"):
        runner.device_step(feed["actual_input_1"])


def test_describe_names_every_option(narrow_model):
    runner = TorchCudaRunner(narrow_model, "running", "cpu", CPU_TUNED)
    assert runner.describe() == "torch-cpu-tuned [bn_mode=running, fp32, channels-last-3d, bn-folded, cpu]"
    assert runner.dtype == "fp32"


# -- CUDA-side scaffolding that needs no GPU ---------------------------------------------------------------------------

def test_numerics_scope_sets_and_restores_the_cudnn_flags(narrow_model):
    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.conv.fp32_precision)
    try:
        cudnn.benchmark, cudnn.conv.fp32_precision = False, "tf32"  # PyTorch's default lets convolutions use TF32
        for dtype, precision in (("fp32", "ieee"), ("tf32", "tf32")):
            runner = TorchCudaRunner(narrow_model, "running", "cuda", CudaOptions(dtype=dtype))  # no GPU touched
            with runner.numerics():
                assert (cudnn.benchmark, cudnn.conv.fp32_precision) == (True, precision)
            assert (cudnn.benchmark, cudnn.conv.fp32_precision) == (False, "tf32")
    finally:
        cudnn.benchmark, cudnn.conv.fp32_precision = saved


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is absent")
def test_activating_on_a_machine_without_cuda_says_what_is_missing(narrow_model):
    runner = TorchCudaRunner(narrow_model, "running")
    assert cuda_unavailable_reason().startswith(CUDA_UNAVAILABLE)
    with pytest.raises(UsageError, match=r"CUDA not available: torch.cuda.is_available\(\) is False; run on a host"):
        runner.activate()
    assert not runner.is_active


def test_every_dtype_is_a_registered_backend(narrow_model):
    names = backend_names()
    assert {"torch-cuda", "torch-cuda-tf32", "torch-cuda-fp16", "torch-cuda-bf16"} <= set(names)
    runner = create_runner("torch-cuda-fp16", model=narrow_model, bn_mode="instance")
    assert isinstance(runner, TorchCudaRunner) and not runner.is_active
    assert (runner.name, runner.dtype, runner.bn_mode, runner.options.fold_bn) == (
        "torch-cuda-fp16", "fp16", "instance", False)


def test_invariance_tolerances_exist_for_every_dtype():
    for dtype in DTYPES:
        tol = gpu_invariance_tolerance(dtype, fp32_atol=1e-5)
        assert tol.max_abs is not None and tol.max_flip_fraction is not None
    assert gpu_invariance_tolerance("fp32", 2e-5).max_abs == 2e-5
