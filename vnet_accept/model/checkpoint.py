"""Loading and writing VNet checkpoints in every layout the port meets (SPEC §2.2).

Accepted layouts (all loaded *strictly*: every key present, nothing extra, every shape right):

* ``upstream``: ``{'epoch', 'state_dict', 'best_prec1'}`` with every key prefixed ``module.`` (DataParallel);
* ``port``: Ascend's training port, ``{'epoch', 'state_dict', 'error'}`` without the prefix;
* ``bare``: a state dict on its own;
* any of these lacking the 24 ``num_batches_tracked`` counters (older PyTorch): filled with zeros.

Anything else is refused with a :class:`CheckpointError` naming the missing, unexpected and mis-shaped keys.
The architecture (width, PReLU vs ELU) is read from the tensors, so a checkpoint describes its own model.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.errors import CheckpointError
from vnet_accept.io_utils import atomic_write_bytes, sha256_bytes
from vnet_accept.model.vnet import DEFAULT_WIDTH, VNet, VNetBatchNorm3d

LAYOUTS = ("upstream", "port", "bare", "legacy")
PREFIX = "module."
_WRAPPER_KEYS = {"state_dict", "model_state_dict", "model"}
_MAX_LISTED = 8
#: Bump when the seeded stand-in weights change for a given seed (cache keys include it).
STANDIN_VERSION = 4


@dataclass
class LoadedCheckpoint:
    """A checkpoint read from disk, normalised to upstream key names."""

    path: Path | None
    sha256: str
    layout: str  # upstream | port | bare, plus "+legacy" when num_batches_tracked was filled in
    state_dict: OrderedDict[str, torch.Tensor]
    width: int
    elu: bool
    meta: dict[str, Any] = field(default_factory=dict)  # epoch, best_prec1 / error, ...

    def build_model(self, bn_mode: str = "running", nll: bool = True) -> VNet:
        """A fresh ``VNet`` in eval mode with these weights (strict load)."""
        model = VNet(elu=self.elu, nll=nll, bn_mode=bn_mode, width=self.width)
        load_state_dict_strict(model, self.state_dict, source=str(self.path or "<memory>"))
        return model.eval()

    def describe(self) -> str:
        where = self.path or "<memory>"
        act = "ELU" if self.elu else "PReLU"
        return f"{where} (layout {self.layout}, width {self.width}, {act}, sha256 {self.sha256[:12]})"


def load_checkpoint(path: str | os.PathLike[str]) -> LoadedCheckpoint:
    """Read ``path`` and normalise it; raise :class:`CheckpointError` with a precise reason otherwise."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass the checkpoint file (e.g. "
                              "vnet_model_best.pth.tar)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass the trained vnet_model_best.pth.tar "
                              "(or write a seeded stand-in with `vnet-accept checkpoint random -o FILE`)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc.strerror or exc}); check its "
                              "permissions") from None
    if not data:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); copy it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # garbage makes the unpickler warn before it fails; we say why
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many types (IndexError, KeyError, ...) on garbage
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} cannot be read by torch.load ({first}); the file is truncated "
                              "or not a PyTorch checkpoint — copy it again or re-save it with torch.save") from None
    return normalise_checkpoint(obj, path=path, sha256=sha256_bytes(data))


def normalise_checkpoint(obj: Any, path: Path | None = None, sha256: str = "") -> LoadedCheckpoint:
    where = path or "<memory>"
    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and _WRAPPER_KEYS & set(obj) and not _looks_like_state_dict(obj):
        key = next(k for k in ("state_dict", "model_state_dict", "model") if k in obj)
        meta = {k: _plain(v) for k, v in obj.items() if k != key}
        state = obj[key]
        wrapper = "upstream" if "best_prec1" in obj else "port" if "error" in obj else "wrapped"
    elif isinstance(obj, dict) and _looks_like_state_dict(obj):
        state, wrapper = obj, "bare"
    else:
        raise CheckpointError(f"checkpoint {where} holds a {type(obj).__name__}, not a state dict or a dict with "
                              "'state_dict'; save model.state_dict() (or {'state_dict': ...})")
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"checkpoint {where}: its state dict is empty or not a mapping")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"checkpoint {where}: entries that are not tensors: {_listing(bad)}")

    keys = list(state)
    prefixed = [k for k in keys if k.startswith(PREFIX)]
    if prefixed and len(prefixed) != len(keys):
        plain = [k for k in keys if not k.startswith(PREFIX)]
        raise CheckpointError(
            f"checkpoint {where} mixes key styles: {len(prefixed)} keys carry the DataParallel prefix "
            f"'module.' and {len(plain)} do not (e.g. {_listing(plain)}); a half-stripped checkpoint — strip "
            "the prefix from all keys or none")
    if prefixed:
        state = OrderedDict((k[len(PREFIX):], v) for k, v in state.items())
        layout = "upstream" if wrapper in ("upstream", "wrapped") else wrapper + "+module-prefix"
    else:
        state = OrderedDict(state)
        layout = "port" if wrapper == "wrapped" else wrapper
    width, elu = _infer_architecture(state, where)
    reference = VNet(elu=elu, width=width).state_dict()
    filled = [k for k in reference if k.endswith("num_batches_tracked") and k not in state]
    if filled and len(filled) == sum(k.endswith("num_batches_tracked") for k in reference):
        for k in filled:
            state[k] = torch.zeros((), dtype=torch.long)
        layout += "+legacy"
    _check_keys(state, reference, where)
    _check_finite(state, where)
    state = OrderedDict((k, state[k]) for k in reference)  # upstream key order
    return LoadedCheckpoint(path=path, sha256=sha256, layout=layout, state_dict=state, width=width, elu=elu,
                            meta=meta)


def load_state_dict_strict(model: VNet, state: dict[str, torch.Tensor], source: str) -> None:
    _check_keys(state, model.state_dict(), source)
    model.load_state_dict(state, strict=True)


def _looks_like_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)[:80]


def _infer_architecture(state: dict[str, torch.Tensor], where: object) -> tuple[int, bool]:
    conv = state.get("in_tr.conv1.weight")
    if conv is None or conv.dim() != 5:
        raise CheckpointError(f"checkpoint {where} has no 5-D 'in_tr.conv1.weight'; it is not a VNet checkpoint "
                              f"(first keys: {_listing(list(state)[:5])})")
    width = int(conv.shape[0])
    elu = "in_tr.relu1.weight" not in state
    return width, elu


def _check_keys(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], where: object) -> None:
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference]
    misshaped = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in reference.items()
                 if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({_listing(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({_listing(unexpected)})")
        if misshaped:
            parts.append(f"{len(misshaped)} mis-shaped ({_listing(misshaped)})")
        raise CheckpointError(f"checkpoint {where} does not fit VNet(elu=False, nll=True): " + "; ".join(parts)
                              + "; it must be a VNet state dict with upstream names")


def _check_finite(state: dict[str, torch.Tensor], where: object) -> None:
    """Refuse NaN/Inf weights, naming the tensors: such a checkpoint exports and "runs", producing garbage."""
    bad = []
    for key, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            count = int((~torch.isfinite(tensor)).sum())
            if count:
                bad.append(f"{key} ({count:,} of {tensor.numel():,} values)")
    if bad:
        raise CheckpointError(f"checkpoint {where}: NaN/Inf values in {len(bad)} tensor{'s' if len(bad) > 1 else ''}: "
                              f"{_listing(bad)}; the weights are damaged (training diverged or the file was "
                              "corrupted) - use another checkpoint")


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", … {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


# --- Seeded stand-ins for the unreachable trained checkpoint ----------------------------------------------------

def random_state_dict(seed: int = 0, width: int = DEFAULT_WIDTH, elu: bool = False,
                      calibrate: bool = True) -> OrderedDict[str, torch.Tensor]:
    """Seeded random VNet weights that behave like a trained network's where it matters to the gate.

    PyTorch's default initialisation leaves every BN at mean 0 / var 1 / weight 1 / bias 0, which is both
    unrealistic and dangerous: identical initialisers are de-duplicated by the ONNX exporter, and ONNX Runtime
    aliases a training-form BN's running-stat inputs to its outputs, so shared buffers get overwritten. So BN
    affine parameters and PReLU slopes are randomised and, with ``calibrate``, the running statistics are set
    from CT-like inputs (cumulative average over a few batches, as training would leave them).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VNet(elu=elu, width=width, bn_mode="batch")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, VNetBatchNorm3d):
                n = module.num_features
                module.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=gen))
                module.bias.copy_(0.05 * torch.randn(n, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_var.copy_(1.0 + 0.2 * torch.rand(n, generator=gen))
            elif isinstance(module, torch.nn.PReLU):
                module.weight.copy_(0.25 + 0.05 * torch.randn(module.weight.shape, generator=gen))
    if calibrate:
        _calibrate_running_stats(model.eval(), seed)  # eval: dropout off; BN semantics come from the flags
    return OrderedDict(model.state_dict())


def _calibrate_running_stats(model: VNet, seed: int) -> None:
    bns = [m for m in model.modules() if isinstance(m, VNetBatchNorm3d)]
    for bn in bns:
        bn.port_updates_running_stats = True  # upstream ContBatchNorm3d: batch stats + buffer update
    # 32×48×48 keeps 2×3×3 voxels at the deepest level; at 16×32×32 the deep statistics come from 1×2×2 voxels and
    # running-mode activations on a full tile blow up (log-probs near -50, fp32 round-off 100× larger).
    inputs = torch.from_numpy(ct_like_batch(4, (32, 48, 48), seed=seed + 1))
    with torch.no_grad():
        for i, start in enumerate(range(0, len(inputs), 2)):
            for bn in bns:
                bn.momentum = 1.0 / (i + 1)  # cumulative average over the calibration batches
            model(inputs[start:start + 2])
    for bn in bns:
        bn.port_updates_running_stats = False
        bn.momentum = 0.1


def checkpoint_object(state: dict[str, torch.Tensor], layout: str, epoch: int = 0) -> Any:
    """Wrap ``state`` (upstream names) as the given layout would store it."""
    if layout == "upstream":
        return {"epoch": epoch, "state_dict": OrderedDict((PREFIX + k, v) for k, v in state.items()),
                "best_prec1": 0.355}
    if layout == "port":
        return {"epoch": epoch, "state_dict": OrderedDict(state), "error": 0.5646}
    if layout == "bare":
        return OrderedDict(state)
    if layout == "legacy":
        return {"epoch": epoch, "state_dict": OrderedDict(
            (PREFIX + k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")), "best_prec1": 0.355}
    raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, torch.Tensor], layout: str = "upstream",
                    epoch: int = 0) -> Path:
    buf = io.BytesIO()
    torch.save(checkpoint_object(state, layout, epoch), buf)
    return atomic_write_bytes(path, buf.getvalue())


def write_random_checkpoint(path: str | os.PathLike[str], seed: int = 0, layout: str = "upstream",
                            width: int = DEFAULT_WIDTH, elu: bool = False) -> Path:
    """The tests' stand-in for the trained checkpoint: seeded weights in the given layout."""
    return save_checkpoint(path, random_state_dict(seed=seed, width=width, elu=elu), layout=layout)
