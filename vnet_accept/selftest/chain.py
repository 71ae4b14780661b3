"""The self-test's clean chain: trained narrow VNet -> export -> preprocess -> infer -> post-process.

Everything is built on demand and cached in the artifact cache by what determines it (the shipped weights or the
training recipe, the checkpoint's sha256, the manifest, library versions), so a warm cache costs seconds:

* the checkpoint: the weights :data:`SELFTEST_RECIPE` produced, shipped with the package
  (:mod:`vnet_accept.selftest.weights`); when the recipe changed since they were written,
  :func:`vnet_accept.model.train.train_narrow_vnet` trains it instead (with a warning). Saved in the upstream
  layout (``module.`` keys) like the port's real checkpoint;
* held-out data: synthetic scans of seed :data:`HELD_OUT_SEED` (never a training seed), one chest and one
  abdominal scan, normalised and cut into tiles by the data pipeline;
* two exports (``running`` BN, the semantics the trained model is calibrated for): the fixed 64×80×80 artifact
  ATC would get, and a dynamic-shape one for the reduced-size batch-invariance check;
* a results folder as ``ais_bench`` writes it (``result/result_bs4/<stem>_0.bin``), from ONNX Runtime;
* a PyTorch reference run of every tile (the per-tile check's reference), and the port's legacy performance
  files (SPEC §7 figures, one per batch size).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.cache import ArtifactCache
from vnet_accept.model.train import TRAIN_VERSION, TRAINED_BN_MODE, TrainRecipe

#: The self-test model's recipe (see :mod:`vnet_accept.model.train` for what each field does and why).
SELFTEST_RECIPE = TrainRecipe()
#: BN semantics of the self-test chain: the gate's default, which the recipe calibrates for (vnet_accept.model.train).
SELFTEST_BN_MODE = TRAINED_BN_MODE
#: Held-out synthetic scans: the gate's default synthetic seed (the recipe trains on another, asserted below).
HELD_OUT_SEED = 0
HELD_OUT_KINDS = ("chest", "abdomen")
#: Batch size of the self-test's inference (any works: ``running`` BN is batch-invariant).
INFER_BATCH = 4
RESULT_DIR = "result"
RESULT_DIRNAME = f"result_bs{INFER_BATCH}"
CHECKPOINT_NAME = "vnet_selftest.pth.tar"
TRAIN_RECORD = "training.json"
PREP_DIR = "prep_bin"


@dataclass
class CleanChain:
    """The clean artifacts every planted defect starts from (all read-only: defects plant into copies)."""

    checkpoint: Path  # trained, upstream layout
    training: dict[str, Any]  # recipe, losses, seconds, training UIDs
    dataset_root: Path  # held-out scans, raw and normalised layouts
    uid_file: Path  # the held-out split, one UID per line with a final newline
    manifest: Any  # Manifest of the held-out tiles
    onnx: Path  # fixed 64×80×80, SELFTEST_BN_MODE
    onnx_dynamic: Path  # dynamic spatial axes, SELFTEST_BN_MODE
    results: Path  # the result/ folder: result_bs4/<stem>_0.bin
    reference: dict[tuple[str, int], np.ndarray]  # PyTorch (SELFTEST_BN_MODE) output per (uid, tile)
    perf_dir: Path  # the port's legacy perf files
    bn_mode: str = SELFTEST_BN_MODE

    @property
    def results_folder(self) -> Path:
        return self.results / RESULT_DIRNAME

    def load_checkpoint(self):
        from vnet_accept.model.checkpoint import load_checkpoint

        return load_checkpoint(self.checkpoint)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import scipy
    import SimpleITK
    import torch

    from vnet_accept import __version__

    return {"torch": torch.__version__, "numpy": np.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "scipy": scipy.__version__, "SimpleITK": SimpleITK.__version__,
            "vnet_accept": __version__}


def trained_checkpoint(cache: ArtifactCache, recipe: TrainRecipe = SELFTEST_RECIPE,
                       progress: Callable[[int, int, float], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """The checkpoint of ``recipe`` and its training record: the shipped weights when they belong to ``recipe``
    (:func:`vnet_accept.selftest.weights.shipped_for`), else trained (once per recipe and library versions, after
    a one-time warning). The record's ``source`` says which."""
    import torch

    from vnet_accept.model.checkpoint import save_checkpoint
    from vnet_accept.model.train import train_narrow_vnet
    from vnet_accept.selftest.weights import recipe_inputs, recipe_sha256, shipped_for

    if recipe.synthetic_seed == HELD_OUT_SEED:
        raise ValueError(f"the training seed {recipe.synthetic_seed} is the held-out seed; choose another")
    shipped = shipped_for(recipe)
    if shipped is not None:
        shipped_inputs = {"weights_sha256": shipped.meta["sha256"], "recipe_sha256": recipe_sha256(recipe),
                          "torch": torch.__version__}
        record = {**shipped.meta["training"], "recipe": recipe.to_dict(), "train_version": TRAIN_VERSION,
                  "torch": shipped.meta.get("torch"), "trained": shipped.meta.get("trained"),
                  "held_out_recorded": shipped.meta.get("held_out"), "source": shipped.describe()}

        def unpack(directory: Path) -> None:
            save_checkpoint(directory / CHECKPOINT_NAME, shipped.state_dict(), layout="upstream", epoch=recipe.steps)
            (directory / TRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n")

        entry = cache.get_or_build("selftest-model", shipped_inputs, unpack)
        return entry / CHECKPOINT_NAME, json.loads((entry / TRAIN_RECORD).read_text())

    inputs = {**recipe_inputs(recipe), **_versions()}

    def build(directory: Path) -> None:
        result = train_narrow_vnet(recipe, progress=progress)
        save_checkpoint(directory / CHECKPOINT_NAME, result.state_dict, layout="upstream", epoch=recipe.steps)
        record = {**result.record(), "source": f"trained with the recipe here ({_versions()['torch']})"}
        (directory / TRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n")

    entry = cache.get_or_build("selftest-model", inputs, build)
    return entry / CHECKPOINT_NAME, json.loads((entry / TRAIN_RECORD).read_text())


def held_out_dataset(cache: ArtifactCache) -> tuple[Path, Path]:
    """``(root, uid_file)``: the held-out synthetic scans, raw and normalised, and their UID list."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.normalize import RECORD_VERSION, normalize_dataset
    from vnet_accept.data.synth import SYNTH_VERSION, UID_FILE, draw_spec, synthesize_dataset
    from vnet_accept.errors import DataError

    inputs = {"seed": HELD_OUT_SEED, "kinds": HELD_OUT_KINDS, "synth_version": SYNTH_VERSION,
              "uids": [draw_spec(HELD_OUT_SEED, i, kind=kind).uid for i, kind in enumerate(HELD_OUT_KINDS)],
              "normalize_version": RECORD_VERSION, **_versions()}

    def build(directory: Path) -> None:
        synthesize_dataset(directory, scans=len(HELD_OUT_KINDS), seed=HELD_OUT_SEED, kinds=HELD_OUT_KINDS)
        raw = discover(directory).require_raw()
        results = normalize_dataset(raw.select(), directory, jobs=1, layout=raw)
        if results.failures:
            raise DataError(f"normalising the self-test's held-out scans failed: {results.failures}")

    root = cache.get_or_build("selftest-data", inputs, build)
    return root, root / UID_FILE


def prepare_tiles(dataset_root: Path, uids: Any, out_dir: Path):
    """Cut the normalised scans ``uids`` (a :class:`~vnet_accept.data.uids.UidList`) into ``out_dir``."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.prepare import preprocess_dataset

    layout = discover(dataset_root).require_normalized()
    return preprocess_dataset(layout, uids, out_dir, info_path=out_dir.parent / "vnet_prep_bin.info",
                              info_dir_text=out_dir.name)


def held_out_tiles(cache: ArtifactCache, dataset_root: Path, uid_file: Path):
    """The held-out split's tiles (a complete :class:`~vnet_accept.data.prepare.Manifest`)."""
    from vnet_accept.data.prepare import MANIFEST_VERSION, load_manifest
    from vnet_accept.data.uids import read_uid_file

    inputs = {"data": str(dataset_root), "uids": uid_file.read_text(), "manifest_version": MANIFEST_VERSION}
    entry = cache.get_or_build("selftest-tiles", inputs,
                               lambda d: prepare_tiles(dataset_root, read_uid_file(uid_file), d / PREP_DIR))
    return load_manifest(entry / PREP_DIR)


def export_cached(cache: ArtifactCache, checkpoint: Path, spatial: tuple[int, int, int] | None,
                  bn_mode: str = SELFTEST_BN_MODE) -> Path:
    from vnet_accept.export.onnx_export import ExportOptions, export_onnx
    from vnet_accept.io_utils import sha256_file
    from vnet_accept.model.checkpoint import load_checkpoint

    options = ExportOptions(bn_mode=bn_mode, spatial=spatial)
    sha = sha256_file(checkpoint)
    inputs = {"checkpoint_sha256": sha, **options.cache_inputs()}

    def build(directory: Path) -> None:
        export_onnx(load_checkpoint(checkpoint).build_model(bn_mode), directory / "vnet.onnx", options,
                    checkpoint_sha256=sha)

    return cache.get_or_build("selftest-onnx", inputs, build) / "vnet.onnx"


def infer_results(onnx: Path, manifest: Any, result_dir: Path, bn_mode: str = SELFTEST_BN_MODE) -> Path:
    """Run every tile of ``manifest`` through ONNX Runtime and write ``result_dir/result_bs4/<stem>_0.bin`` as
    ais_bench does; returns the output folder."""
    from vnet_accept.results.inference import run_inference
    from vnet_accept.runners.onnxrt import OnnxRuntimeRunner

    out = result_dir / RESULT_DIRNAME
    run_inference(OnnxRuntimeRunner(onnx, bn_mode=bn_mode), manifest, out, layout="ais_bench",
                  batch_size=INFER_BATCH, progress=False)
    return out


def _manifest_digest(manifest: Any) -> str:
    return hashlib.sha256((manifest.directory / "manifest.json").read_bytes()).hexdigest()


def clean_results(cache: ArtifactCache, onnx: Path, manifest: Any) -> Path:
    from vnet_accept.io_utils import sha256_file

    inputs = {"onnx_sha256": sha256_file(onnx), "manifest": _manifest_digest(manifest), **_versions()}
    entry = cache.get_or_build("selftest-results", inputs, lambda d: infer_results(onnx, manifest, d / RESULT_DIR))
    return entry / RESULT_DIR


def reference_outputs(cache: ArtifactCache, checkpoint: Path, manifest: Any,
                      bn_mode: str = SELFTEST_BN_MODE) -> dict[tuple[str, int], np.ndarray]:
    """PyTorch's output for every tile, ``{(uid, tile): (64, 80, 80, 2) float32}`` (cached as ``.npy`` files)."""
    from vnet_accept.io_utils import sha256_file
    from vnet_accept.model.checkpoint import load_checkpoint
    from vnet_accept.runners.torch_runner import TorchRunner

    inputs = {"checkpoint_sha256": sha256_file(checkpoint), "manifest": _manifest_digest(manifest),
              "bn_mode": bn_mode, **_versions()}

    def build(directory: Path) -> None:
        with TorchRunner(load_checkpoint(checkpoint).build_model(bn_mode), bn_mode=bn_mode) as runner:
            for e in manifest.entries:
                out = runner.infer({"actual_input_1": manifest.read_input(e)[None, None]})["output1"][0]
                np.save(directory / f"{e.stem}.npy", out)

    entry = cache.get_or_build("selftest-reference", inputs, build)
    return {e.key: np.load(entry / f"{e.stem}.npy") for e in manifest.entries}


def held_out_error(cache: ArtifactCache, checkpoint: Path):
    """``selftest.trained_model.error_rate`` of ``checkpoint`` on the held-out scans through the self-test's chain:
    the fixed 64×80×80 export, ONNX Runtime, post-processing, judged by the gate's
    :func:`vnet_accept.judge.accuracy.error_rate_at_most` (a :class:`~vnet_accept.judge.criterion.Criterion`;
    measured in %, ``details`` with ``per_volume``, ``dice``, ``incorrect`` and ``total``)."""
    from vnet_accept.data.tiles import TILE_SHAPE
    from vnet_accept.data.uids import read_uid_file
    from vnet_accept.judge.accuracy import error_rate_at_most
    from vnet_accept.reference import AccuracyReference
    from vnet_accept.results.postprocess import postprocess_results
    from vnet_accept.tolerances import SELFTEST_MAX_ERROR_PCT

    root, uid_file = held_out_dataset(cache)
    manifest = held_out_tiles(cache, root, uid_file)
    results = clean_results(cache, export_cached(cache, checkpoint, TILE_SHAPE), manifest)
    report = postprocess_results(results / RESULT_DIRNAME, luna16_root=root, manifest=manifest,
                                 uids=read_uid_file(uid_file), reference=AccuracyReference(), resamples=50)
    return error_rate_at_most("selftest.trained_model.error_rate", "the checkpoint's pooled voxel error rate on the "
                              "held-out synthetic scans", report, SELFTEST_MAX_ERROR_PCT,
                              basis=f"{checkpoint.name}, held-out synthetic scans, ONNX Runtime CPU, fp32")


#: The legacy perf file of the port at each batch size: one chip (device 0), SPEC §5's five-module format.
_LEGACY_PERF = ("[e2e] throughputRate: {e2e:.6g}, latency: {latency:.6g}\n"
                "[data read] throughputRate: 225.606, moduleLatency: 4.43251\n"
                "[preprocess] throughputRate: 53.7844, moduleLatency: 18.5928\n"
                "[inference] throughputRate: {infer:.6g}, Interface throughputRate: {chip:.6g}, "
                "moduleLatency: {module:.6g}\n"
                "[postprocess] throughputRate: {infer:.6g}, moduleLatency: {module:.6g}\n")


def write_port_perf_files(directory: Path) -> list[Path]:
    """The port's per-chip figures (SPEC §7) as legacy ``perf_vision_batchsize_<bs>_device_0.txt`` files."""
    from vnet_accept.reference import PORT_310_CHIP_FPS, TEST_SPLIT_TILES

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for bs, chip in sorted(PORT_310_CHIP_FPS.items()):
        e2e = chip * 0.935  # the port's e2e / interface ratio at bs1 (5.70609 / 6.10496)
        text = _LEGACY_PERF.format(e2e=e2e, latency=1000 * TEST_SPLIT_TILES / e2e, infer=chip * 0.942,
                                   chip=chip, module=1000 * bs / (chip * 0.942))
        path = directory / f"perf_vision_batchsize_{bs}_device_0.txt"
        path.write_text(text)
        paths.append(path)
    return paths


def build_clean_chain(cache: ArtifactCache, workdir: Path, recipe: TrainRecipe = SELFTEST_RECIPE,
                      progress: Callable[[int, int, float], None] | None = None) -> CleanChain:
    """Build (or read from the cache) every clean artifact; ``workdir`` receives the uncached small ones."""
    from vnet_accept.data.tiles import TILE_SHAPE

    checkpoint, training = trained_checkpoint(cache, recipe, progress)
    root, uid_file = held_out_dataset(cache)
    manifest = held_out_tiles(cache, root, uid_file)
    onnx = export_cached(cache, checkpoint, TILE_SHAPE)
    onnx_dynamic = export_cached(cache, checkpoint, None)
    results = clean_results(cache, onnx, manifest)
    reference = reference_outputs(cache, checkpoint, manifest)
    perf_dir = workdir / "perf"
    if perf_dir.exists():
        shutil.rmtree(perf_dir)
    write_port_perf_files(perf_dir)
    return CleanChain(checkpoint, training, root, uid_file, manifest, onnx, onnx_dynamic, results, reference,
                      perf_dir)
