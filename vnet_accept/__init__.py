"""vnet-accept: the acceptance gate for the VNet PyTorch → ONNX → Ascend OM port."""

__version__ = "0.1.0"
