"""The self-test model's shipped weights: what :data:`~vnet_accept.selftest.chain.SELFTEST_RECIPE` produced, as
package data, so neither CI nor a new user has to train it (issue 15).

Two files beside this module:

* :data:`WEIGHTS_FILE` (``selftest_model.npz``, compressed): the trained state dict (upstream key names). The 5-D
  convolution kernels - nearly all of the 2,854,306 parameters - are stored as float16 (round to nearest,
  relative change <= 2^-11); every other tensor as trained (float32 BN statistics, whose running variances
  reach ~6e4, near float16's 65,504 limit, and the int64 counters). Loading casts the kernels back to float32:
  the self-test runs, and its recorded error rate was measured, on the weights exactly as loaded.
* :data:`META_FILE` (``selftest_model.json``): the recipe's content hash (:func:`recipe_sha256`: the recipe,
  ``TRAIN_VERSION`` and the versions of the synthetic data and normalisation it trains on), the weights file's
  sha256, the torch/numpy versions, thread count, CPU and date of the training, its record (losses, seconds)
  and the held-out error rate through the self-test's chain.

:func:`~vnet_accept.selftest.chain.trained_checkpoint` uses the shipped weights when their recipe hash is the
current recipe's; otherwise it warns once (:class:`StaleSelftestWeights`) and trains as before (cached).

Regenerate after changing the recipe, ``TRAIN_VERSION``, the synthetic data or the normalisation::

    python -m vnet_accept.selftest.weights --write     # trains (~1.5-3 min on 2 cores), measures, writes both files
    python -m vnet_accept.selftest.weights             # shows whether the shipped file fits the current recipe

``pytest -m selftest_training`` retrains with the recipe and compares with the shipped weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.cache import cache_key
from vnet_accept.io_utils import atomic_write_json, sha256_file
from vnet_accept.model.train import TRAIN_VERSION, TrainRecipe

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_FILE = "selftest_model.npz"
META_FILE = "selftest_model.json"
META_FORMAT = 1
REGENERATE = "python -m vnet_accept.selftest.weights --write"
#: Tensors of this rank (convolution kernels) are stored as float16; everything else keeps its dtype.
FP16_NDIM = 5


class StaleSelftestWeights(UserWarning):
    """The shipped self-test weights do not belong to the current recipe (or cannot be read): training instead."""


def recipe_inputs(recipe: TrainRecipe) -> dict[str, Any]:
    """Everything besides library versions that determines what ``recipe`` trains: the recipe, the training code's
    version and the versions of the synthetic scans and the normalisation it trains on."""
    from vnet_accept.data.normalize import VOLUMES_VERSION
    from vnet_accept.data.synth import SYNTH_VERSION

    return {"recipe": recipe.to_dict(), "train_version": TRAIN_VERSION, "synth_version": SYNTH_VERSION,
            "normalize_version": VOLUMES_VERSION}


def recipe_sha256(recipe: TrainRecipe) -> str:
    """sha256 of the canonical JSON of :func:`recipe_inputs`."""
    return cache_key(recipe_inputs(recipe))


@dataclass(frozen=True)
class ShippedWeights:
    """A weights file and its metadata (``directory/selftest_model.npz`` and ``.json``)."""

    directory: Path
    meta: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.directory / WEIGHTS_FILE

    @property
    def recipe_sha256(self) -> str:
        return str(self.meta.get("recipe_sha256", ""))

    def problem(self, recipe: TrainRecipe) -> str | None:
        """Why these weights cannot stand for ``recipe`` (``None``: they can)."""
        if self.meta.get("format") != META_FORMAT:
            return f"{self.directory / META_FILE} has format {self.meta.get('format')!r}, not {META_FORMAT}"
        if self.recipe_sha256 != recipe_sha256(recipe):
            changed = sorted(k for k, v in recipe_inputs(recipe).items() if self.meta.get(k) != v)
            return (f"{self.path} was trained by another recipe (recipe hash {self.recipe_sha256[:12]} vs the "
                    f"current {recipe_sha256(recipe)[:12]}; changed: {', '.join(changed) or 'unknown'})")
        if not self.path.is_file():
            return f"{self.path} is missing"
        digest = sha256_file(self.path)
        if digest != self.meta.get("sha256"):
            return (f"{self.path} has sha256 {digest[:12]}, not the {str(self.meta.get('sha256'))[:12]} its "
                    f"{META_FILE} records (a Git LFS pointer or a partial regeneration?)")
        return None

    def state_dict(self) -> dict[str, Any]:
        """The weights as the self-test uses them: torch tensors, float16 kernels cast to float32."""
        import torch

        state = {}
        with np.load(self.path, allow_pickle=False) as data:
            for key in data.files:
                a = data[key]
                state[key] = torch.from_numpy(a.astype(np.float32) if a.dtype == np.float16 else a)
        return state

    def describe(self) -> str:
        error = (self.meta.get("held_out") or {}).get("error_rate_pct")
        return (f"shipped {self.path.name} (trained {self.meta.get('trained')} with torch {self.meta.get('torch')}; "
                f"held-out error {f'{error:.4f}' if isinstance(error, (int, float)) else error} %)")


def load_shipped(directory: Path = PACKAGE_DIR) -> ShippedWeights | None:
    """The weights shipped in ``directory``, or ``None`` when its metadata file is absent."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        return None
    return ShippedWeights(directory, json.loads(meta_path.read_text()))


def shipped_for(recipe: TrainRecipe, directory: Path = PACKAGE_DIR) -> ShippedWeights | None:
    """The shipped weights when they stand for ``recipe``; otherwise ``None``, after a one-time warning naming
    why and how to regenerate them."""
    shipped = load_shipped(directory)
    problem = f"no shipped self-test weights in {directory}" if shipped is None else shipped.problem(recipe)
    if problem is None:
        return shipped
    warn_once(problem)
    return None


_warned: set[str] = set()


def warn_once(problem: str) -> None:
    """One :class:`StaleSelftestWeights` per distinct problem and process (the model is trained once, cached)."""
    if problem in _warned:
        return
    _warned.add(problem)
    warnings.warn(f"self-test weights not used: {problem}. Training the self-test model with the recipe instead "
                  f"(cached; ~1.5-3 min on 2 cores). Regenerate the shipped file with: {REGENERATE}",
                  StaleSelftestWeights, stacklevel=3)


def storable(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """``state`` (torch tensors) as the arrays stored: float32 kernels (ndim 5) as float16, the rest as is."""
    arrays = {}
    for key, tensor in state.items():
        a = tensor.detach().cpu().numpy()
        if a.dtype == np.float32 and a.ndim == FP16_NDIM:
            if a.size and not np.abs(a).max() <= np.finfo(np.float16).max:
                raise ValueError(f"{key}: values up to {np.abs(a).max():.3g} overflow float16; store it as float32")
            a = a.astype(np.float16)
        arrays[key] = a
    return arrays


def write_shipped(result: Any, directory: Path, measure: Any) -> ShippedWeights:
    """Store ``result`` (a :class:`~vnet_accept.model.train.TrainResult`) in ``directory``: the weights, then
    ``measure(shipped)`` (the held-out figures, from the weights as loaded back), then the metadata. The metadata
    is written last, so an interrupted write leaves a file whose sha256 does not match and is not used."""
    import datetime
    import platform

    import torch

    from vnet_accept.io_utils import atomic_output
    from vnet_accept.runners.backend_choice import cpu_model

    directory.mkdir(parents=True, exist_ok=True)
    arrays = storable(result.state_dict)
    with atomic_output(directory / WEIGHTS_FILE) as fh:
        np.savez_compressed(fh, **arrays)
    record = result.record()
    meta = {"format": META_FORMAT, "file": WEIGHTS_FILE, "sha256": sha256_file(directory / WEIGHTS_FILE),
            "recipe_sha256": recipe_sha256(result.recipe), **recipe_inputs(result.recipe),
            "trained": datetime.date.today().isoformat(), "torch": torch.__version__, "numpy": np.__version__,
            "threads": torch.get_num_threads(), "cpu": cpu_model(), "machine": platform.machine(),
            "storage": {"float16": sorted(k for k, a in arrays.items() if a.dtype == np.float16),
                        "parameters": int(sum(a.size for a in arrays.values())),
                        "note": f"rank-{FP16_NDIM} float32 tensors stored as float16, the rest as trained"},
            "training": {k: v for k, v in record.items() if k not in ("recipe", "train_version", "torch")},
            "regenerate": REGENERATE}
    shipped = ShippedWeights(directory, meta)
    meta["held_out"] = measure(shipped)
    atomic_write_json(directory / META_FILE, meta)
    return ShippedWeights(directory, meta)


def measure_held_out(shipped: ShippedWeights, cache: Any) -> dict[str, Any]:
    """The held-out error rate of ``shipped`` as loaded, through the self-test's chain (fixed-shape export ->
    ONNX Runtime -> post-process), as a JSON-able dict."""
    import onnxruntime

    from vnet_accept.model.checkpoint import save_checkpoint
    from vnet_accept.selftest.chain import CHECKPOINT_NAME, held_out_error

    with tempfile.TemporaryDirectory(prefix="vnet-selftest-weights-") as tmp:
        checkpoint = save_checkpoint(Path(tmp) / CHECKPOINT_NAME, shipped.state_dict(), layout="upstream")
        error = held_out_error(cache, checkpoint)
    per_volume = {v["uid"]: v["error_rate_pct"] for v in error.details.get("per_volume", [])}
    return {"error_rate_pct": error.measured, "per_volume_pct": per_volume,
            "dice": error.details.get("dice"), "incorrect": error.details.get("incorrect"),
            "total": error.details.get("total"), "passed": error.passed,
            "chain": f"fixed 64x80x80 export -> ONNX Runtime {onnxruntime.__version__} CPU -> post-process, "
                     "held-out synthetic scans (seed 0: chest, abdomen), weights as loaded from the file"}


def main(argv: list[str] | None = None) -> int:
    from vnet_accept.cache import ArtifactCache
    from vnet_accept.selftest.chain import SELFTEST_RECIPE

    p = argparse.ArgumentParser(prog="python -m vnet_accept.selftest.weights",
                                description="Show, or regenerate (--write), the self-test model's shipped weights.")
    p.add_argument("--write", action="store_true", help="train with the current recipe and write the weights and "
                   "their metadata (default: only show whether the shipped file fits the current recipe)")
    p.add_argument("--out", type=Path, default=PACKAGE_DIR, metavar="DIR",
                   help=f"where to write (default: the package, {PACKAGE_DIR})")
    p.add_argument("--cache", type=Path, metavar="DIR", help="artifact cache for the held-out data and exports "
                   "(default: $VNET_ACCEPT_CACHE, else a temporary folder)")
    args = p.parse_args(argv)
    if not args.write:
        shipped = load_shipped(args.out)
        problem = "none shipped" if shipped is None else shipped.problem(SELFTEST_RECIPE)
        print(f"{'OK' if problem is None else 'STALE'} {args.out / WEIGHTS_FILE}: "
              f"{shipped.describe() if problem is None else problem}"
              + ("" if problem is None else f"\n  regenerate: {REGENERATE}"))
        return 0 if problem is None else 1

    from vnet_accept.model.train import train_narrow_vnet

    def progress(step: int, total: int, loss: float) -> None:
        print(f"\rtraining step {step}/{total}, loss {loss:.4f}", end="" if step < total else "\n", file=sys.stderr)

    result = train_narrow_vnet(SELFTEST_RECIPE, progress=progress)
    with tempfile.TemporaryDirectory(prefix="vnet-selftest-cache-") as tmp:
        root = args.cache or os.environ.get("VNET_ACCEPT_CACHE") or tmp
        shipped = write_shipped(result, args.out, lambda s: measure_held_out(s, ArtifactCache(Path(root))))
    held = shipped.meta["held_out"]
    print(f"wrote {shipped.path} ({shipped.path.stat().st_size:,} bytes) and {args.out / META_FILE}: trained in "
          f"{result.seconds:.0f} s, held-out error {held['error_rate_pct']:.4f} % ({held['per_volume_pct']}), "
          f"Dice {held['dice']:.4f}")
    return 0 if held["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
