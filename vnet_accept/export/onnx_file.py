"""Facts about an ONNX *file* that the graph inspection (:mod:`vnet_accept.export.inspect`) does not cover: its
sha256, weights stored outside it (``vnet.onnx.data``), what ``onnx.checker`` says, and the input geometry a
runner must feed (SPEC §3).

The port's script run under a current torch silently switches to the new exporter, which writes opset 18 with the
weights in a separate ``vnet.onnx.data`` (SPEC §3); ATC wants one self-contained opset-11 file. Both are read here
without loading the external data, so a 180 MB side file costs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: What to do about an opset or external-data problem: the legacy (TorchScript) exporter writes a self-contained
#: opset-11 file (SPEC §3).
LEGACY_EXPORT_FIX = ("re-export with the legacy exporter: torch.onnx.export(model, dummy, 'vnet.onnx', dynamo=False, "
                     "opset_version={opset}, input_names=['actual_input_1'], output_names=['output1'], "
                     "dynamic_axes={{'actual_input_1': {{0: '-1'}}, 'output1': {{0: '-1'}}}})")


@dataclass(frozen=True)
class OnnxFileFacts:
    """``external_data``: the side files tensors are stored in (``location`` entries, relative to the file's folder),
    ``missing_external``: those of them that are absent; ``checker_error``: onnx.checker's first line, if any."""

    path: Path
    sha256: str
    size: int
    external_data: tuple[str, ...]
    missing_external: tuple[str, ...]
    checker_error: str | None


def external_data_locations(proto) -> tuple[str, ...]:
    """The ``location`` of every initializer (or Constant attribute) stored as external data, de-duplicated."""
    from onnx import TensorProto
    from onnx.external_data_helper import uses_external_data

    tensors = list(proto.graph.initializer)
    tensors += [a.t for n in proto.graph.node for a in n.attribute if a.HasField("t")]
    found: dict[str, None] = {}
    for tensor in tensors:
        if tensor.data_location == TensorProto.EXTERNAL or uses_external_data(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            found[location] = None
    return tuple(found)


def read_onnx_facts(path: str | os.PathLike[str]) -> OnnxFileFacts:
    """Read the file's facts (see the class), once per (path, size, modification time) in this process; raises
    :class:`~vnet_accept.errors.UsageError` naming the file when it is not a readable ONNX model."""
    from vnet_accept.errors import UsageError

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"ONNX file {path} does not exist")
    stat = path.stat()
    if stat.st_size == 0:
        raise UsageError(f"{path} is empty (0 bytes); copy the ONNX file again")
    return _read_facts(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _read_facts(path: Path, size: int, mtime_ns: int) -> OnnxFileFacts:
    import onnx

    from vnet_accept.errors import UsageError
    from vnet_accept.io_utils import sha256_file
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and friends: the file is the problem
        raise UsageError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}); export it again or "
                         "check the copy") from None
    if not proto.graph.node:
        raise UsageError(f"{path} holds no graph (no nodes); it is not an exported VNet - export it again")
    locations = external_data_locations(proto)
    missing = tuple(loc for loc in locations if not (path.parent / loc).is_file())
    try:
        onnx.checker.check_model(proto)
        checker_error = None
    except Exception as exc:  # noqa: BLE001 - ValidationError, or a schema error for an unknown op
        checker_error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return OnnxFileFacts(path, sha256_file(path), size, locations, missing, checker_error)

