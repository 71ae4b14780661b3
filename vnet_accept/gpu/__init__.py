"""The GPU side of the gate (issue 6): the pipelined streaming pass and ``vnet-accept gpu-check``.

The CUDA runner itself lives with the other runners (:mod:`vnet_accept.runners.torch_cuda`), the throughput sweep
with the other performance code (:mod:`vnet_accept.gpu.sweep`).
"""
