"""PyTorch runner: the reference implementation, in a chosen BN mode, on the CPU (CUDA in the GPU backend).

It speaks the same names as the exported ONNX (``actual_input_1`` in, ``output1`` out) so results from any
runner compare key by key.

Memory on the CPU: a VNet forward allocates and frees activations of hundreds of MB per layer. glibc serves such
blocks with ``mmap`` and gives them back to the system on ``free``, so every forward faults its pages in again
and the kernel zeroes them: measured on the 2-core VM, 5× the minor page faults and 10-20 % of the wall time of a
full-tile forward. The first CPU runner activated therefore asks glibc (``mallopt``) to keep freed memory in the
process for reuse (:func:`keep_freed_memory`): the resident size stays at its peak (a few GB at bs16) instead.
"""

from __future__ import annotations

import numpy as np
import torch

from vnet_accept.export.onnx_export import INPUT_NAME, OUTPUT_NAME
from vnet_accept.model.vnet import VNet
from vnet_accept.runners.base import Runner, TensorSpec


class TorchRunner(Runner):
    backend = "torch"

    def __init__(self, model: VNet, bn_mode: str | None = None, device: str = "cpu", name: str | None = None,
                 spatial: tuple[int, int, int] | None = None) -> None:
        mode = bn_mode or model.bn_mode
        super().__init__(name or f"torch-{device.split(':')[0]}", bn_mode=mode, dtype="fp32", device=device)
        self.model, self.spatial = model, spatial
        self._module: VNet | None = None

    def activate_impl(self) -> None:
        if self.device == "cpu":
            keep_freed_memory()
        self._module = self.prepare_module()

    def prepare_module(self) -> torch.nn.Module:
        """The module :meth:`forward` runs. Here the caller's (shared) model itself, in this runner's BN mode (a
        forward never mutates buffers in any mode); the CUDA runner returns a transformed private copy."""
        return self.model.to(self.device).eval().set_bn_mode(self.bn_mode)

    def deactivate_impl(self) -> None:
        self._module = None

    def input_metadata_impl(self) -> dict[str, TensorSpec]:
        spatial = self.spatial or (None, None, None)
        return {INPUT_NAME: TensorSpec(np.dtype(np.float32), (None, 1, *spatial))}

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = self.forward(torch.from_numpy(feed[INPUT_NAME]))
        return {OUTPUT_NAME: out.float().cpu().numpy()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The torch forward: a host ``(N, 1, D, H, W)`` float32 tensor in, ``(N, D, H, W, 2)`` out (on the
        runner's device, in its compute dtype). Subclasses override this, not :meth:`infer_impl`."""
        self._module.set_bn_mode(self.bn_mode)  # another runner may share the model object
        return self._module(x.to(self.device))


_MALLOC_TUNED: list[bool] = []


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to serve large blocks from its heap and keep what is freed (``M_MMAP_MAX`` 0,
    ``M_TRIM_THRESHOLD`` unlimited), once per process; True when it was done (glibc on Linux), else nothing."""
    if _MALLOC_TUNED:
        return _MALLOC_TUNED[0]
    done = False
    try:
        import ctypes
        import ctypes.util
        import platform

        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            m_trim_threshold, m_mmap_max = -1, -4
            done = bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):  # another libc or platform: the default allocator, slower but correct
        done = False
    _MALLOC_TUNED.append(done)
    return done
