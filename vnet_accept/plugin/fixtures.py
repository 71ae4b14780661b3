"""Core fixtures: resolved options, the shared reference folder, the artifact cache, the checkpoint under test,
and ONNX exports built on demand (cached by content hash, safe under pytest-xdist)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vnet_accept.cache import ArtifactCache, CacheDirError, default_cache_root
from vnet_accept.options import OPTIONS
from vnet_accept.plugin.options import get_option

SEEDED_CHECKPOINT = {"seed": 0, "layout": "upstream", "width": 16}


@dataclass(frozen=True)
class GateOptions:
    """Every option's resolved value, by ``dest`` (``gate_options.values['bn_mode']``) or attribute."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


@pytest.fixture(scope="session")
def gate_options(pytestconfig: pytest.Config) -> GateOptions:
    return GateOptions({opt.dest: get_option(pytestconfig, opt.dest) for opt in OPTIONS})


@pytest.fixture(scope="session")
def shared_dir(pytestconfig: pytest.Config, gate_options: GateOptions) -> Path:
    """The project's shared reference folder (SPEC.md, reference/, data/), or a skip saying how to provide it."""
    configured = gate_options.shared_dir
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            pytest.skip(f"--shared-dir / VNET_ACCEPT_SHARED points to {path}, which does not exist")
        return path
    candidate = Path(pytestconfig.rootpath).parent / "shared"
    if (candidate / "reference").is_dir():
        return candidate
    pytest.skip("the shared reference folder is absent (the port's reference transcripts, real LUNA16 masks); "
                "pass --shared-dir DIR or set VNET_ACCEPT_SHARED=DIR")


@pytest.fixture(scope="session")
def artifact_cache(pytestconfig: pytest.Config, gate_options: GateOptions) -> ArtifactCache:
    """``--vnet-cache-dir`` / ``VNET_ACCEPT_CACHE``, else pytest's cache folder, else (``-p no:cacheprovider``)
    the per-user folder (:func:`vnet_accept.cache.default_cache_root`, mode 0700) - never a shared /tmp path.
    A cache folder owned by another user is a usage error (:func:`vnet_accept.cache.prepare_cache_root`)."""
    root = gate_options.vnet_cache_dir
    if root:
        where, path = "--vnet-cache-dir", Path(root).expanduser()
    elif getattr(pytestconfig, "cache", None) is not None:  # absent under -p no:cacheprovider
        where, path = "pytest's cache folder", pytestconfig.cache.mkdir("vnet_accept")
    else:
        where, path = "the per-user cache folder", default_cache_root()
    cache = ArtifactCache(path)
    try:
        cache.prepare()
    except OSError as exc:
        raise pytest.UsageError(f"artifact cache ({where}): {exc if isinstance(exc, CacheDirError) else _os(exc)}") \
            from None
    return cache


def _os(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror or exc}; pass --vnet-cache-dir DIR (a folder you can write to)"


@pytest.fixture(scope="session")
def uses_real_weights(gate_options: GateOptions) -> bool:
    """True when the user gave ``--vnet-weights``; thresholds that need a trained network skip otherwise."""
    return bool(gate_options.vnet_weights)


@pytest.fixture(scope="session")
def vnet_checkpoint(gate_options: GateOptions, artifact_cache: ArtifactCache):
    """The checkpoint under test: ``--vnet-weights``, or seeded random weights (cached) standing in for the
    unreachable trained checkpoint."""
    from vnet_accept.errors import CheckpointError
    from vnet_accept.model.checkpoint import STANDIN_VERSION, load_checkpoint, write_random_checkpoint

    if gate_options.vnet_weights:
        try:
            return load_checkpoint(gate_options.vnet_weights)
        except CheckpointError as exc:
            raise pytest.UsageError(f"--vnet-weights: {exc}") from None
    import torch

    inputs = dict(SEEDED_CHECKPOINT, torch=torch.__version__, standin_version=STANDIN_VERSION)
    entry = artifact_cache.get_or_build(
        "checkpoint", inputs, lambda d: write_random_checkpoint(d / "vnet_seeded.pth.tar", **SEEDED_CHECKPOINT))
    return load_checkpoint(entry / "vnet_seeded.pth.tar")


@pytest.fixture(scope="session")
def onnx_export(vnet_checkpoint, artifact_cache: ArtifactCache) -> Callable[..., Path]:
    """``onnx_export(bn_mode, spatial=(64, 80, 80) | None) -> Path``: the checkpoint exported with our exporter,
    built once per content hash (checkpoint sha256 + export options + library versions)."""
    from vnet_accept.data.tiles import TILE_SHAPE
    from vnet_accept.export.onnx_export import ExportOptions, export_onnx

    def build(bn_mode: str, spatial: tuple[int, int, int] | None = TILE_SHAPE, opset: int = 11) -> Path:
        options = ExportOptions(bn_mode=bn_mode, opset=opset, spatial=spatial)
        inputs = {"checkpoint_sha256": vnet_checkpoint.sha256, **options.cache_inputs()}

        def make(directory: Path) -> None:
            export_onnx(vnet_checkpoint.build_model(bn_mode), directory / "vnet.onnx", options,
                        checkpoint_sha256=vnet_checkpoint.sha256)

        return artifact_cache.get_or_build("onnx", inputs, make) / "vnet.onnx"

    return build


@pytest.fixture(scope="session")
def vnet_model(vnet_checkpoint):
    """The PyTorch reference model built from the checkpoint under test (shared; BN mode set by runners)."""
    return vnet_checkpoint.build_model("running")
