"""LUNA16 normalisation exactly as the port's ``normalize_dataset.py ./luna16 2.5 128 160 160`` (SPEC §4.2).

For one scan, ``volume`` ``(Z, Y, X)`` int16 with spacing ``(z, y, x)`` mm:

1. ``resampled_shape = round(shape * spacing / 2.5)`` per axis (NumPy rounding, half to even), zoom factors
   ``resampled_shape / shape``, and ``scipy.ndimage.zoom(volume, factors, order=3, mode='nearest')`` - a
   cubic B-spline zoom **of the int16 array**, so SciPy writes an int16 result. SciPy converts an interpolated
   value to an integer type by adding ±0.5 and truncating toward zero (round half away from zero). This is
   what reproduces the reference figures on the real masks (433,968 and 308,103 foreground voxels); zooming a
   float copy and truncating with ``astype(int16)`` gives 431,855 instead, so that is *not* the procedure.
2. Centred crop or pad to ``(128, 160, 160)``, each axis on its own: a shorter axis is padded with the source
   starting at ``(target - n) // 2``, a longer one cropped from ``(n - target) // 2``; the pad value is the
   minimum of the resampled volume (cubic overshoot can push it below the scan's minimum). Vectorised slicing
   (the port loops voxel by voxel, 45 % of its run time). A volume already of the target shape is kept as is.
   The reference asserts a square in-plane size; here y and x are fitted independently by the same rule, which
   gives the same result for every square scan and a defined one for the rest.
3. CT: int16 ``.mhd/.raw``, spacing 2.5, the *original* origin (the reference does not correct it for the
   crop/pad - a known defect kept for parity; the record has the corrected origin), identity direction.
4. Mask: the same zoom of the label values (0/3/4/5), the same crop/pad, then values < 1 → 0 and values > 0 → 1
   (any interpolated value ≥ 1 - trachea included - is lung); int16 ``.mhd/.zraw``.

Per scan, :func:`normalize_scan` also writes ``normalized_lung_ct/<uid>.json`` (the *record*): original
shape/spacing/origin, zoom factors, resampled shape and effective spacing, crop/pad mode and offset per axis,
pad values, foreground count and the origin corrected for the crop/pad - so any voxel can be traced back
(:meth:`Geometry.original_index`) - and the identity of the raw CT and mask read (header fields, data file size
and sha256; :mod:`vnet_accept.data.provenance`), so a raw scan rewritten after normalisation is detected before
its stale normalised volumes are used. All three outputs of a scan appear together or not at all; the staging
folders of a killed run are removed by the next run into the same place.

:func:`normalize_dataset` runs the scans in parallel processes (:mod:`vnet_accept.data.parallel`) and returns
every result and every failure; a failed scan's stale outputs from an earlier run are removed.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.data.discovery import NORMALIZED_CT_DIR, NORMALIZED_MASK_DIR, Layout, ScanFiles
from vnet_accept.data.mhd import (
    CT_TYPES,
    MASK_TYPES,
    StagedOutputs,
    parse_header,
    read_metaimage,
    remove_metaimage,
    remove_stale_staged,
)
from vnet_accept.data.parallel import ScanResults, run_per_scan
from vnet_accept.data.provenance import source_identity
from vnet_accept.data.tiles import VOLUME_SHAPE
from vnet_accept.errors import DataError
from vnet_accept.io_utils import ensure_dir

#: Target voxel size (mm, isotropic) and interpolation of the reference procedure.
NEW_SPACING_MM = 2.5
ZOOM_ORDER = 3
ZOOM_MODE = "nearest"
RECORD_VERSION = 2  # 2: the raw scan's identity (source_identity)
#: Bump when normalisation computes other volumes (not when only the record's format changes): what the self-test's
#: shipped weights were trained on depends on it.
VOLUMES_VERSION = 1
#: CT and mask of one scan must share their grid; spacings agree to this relative tolerance (headers round).
SPACING_RTOL = 1e-4
AXES = ("z", "y", "x")
#: A resampled axis longer than this (voxels of 2.5 mm, i.e. > 5 m) means a damaged header.
MAX_RESAMPLED = 2048


@dataclass(frozen=True)
class AxisFit:
    """How one axis of the resampled volume was fitted to the target: ``mode`` is ``pad``, ``crop`` or ``keep``;
    ``offset`` is where the source starts in the target (pad) or where the target starts in the source (crop)."""

    axis: str
    resampled: int
    target: int
    mode: str
    offset: int

    @classmethod
    def fit(cls, axis: str, resampled: int, target: int) -> AxisFit:
        if resampled < target:
            return cls(axis, resampled, target, "pad", (target - resampled) // 2)
        if resampled > target:
            return cls(axis, resampled, target, "crop", (resampled - target) // 2)
        return cls(axis, resampled, target, "keep", 0)

    @property
    def source(self) -> slice:
        """The part of the resampled axis that is kept."""
        start = self.offset if self.mode == "crop" else 0
        return slice(start, start + min(self.resampled, self.target))

    @property
    def destination(self) -> slice:
        """Where that part lands in the target axis."""
        start = self.offset if self.mode == "pad" else 0
        return slice(start, start + min(self.resampled, self.target))

    @property
    def shift(self) -> int:
        """``resampled index = target index + shift``."""
        return -self.offset if self.mode == "pad" else self.offset


@dataclass(frozen=True)
class Geometry:
    """Everything the reference leaves implicit about one scan's normalisation; tuples are (z, y, x)."""

    original_shape: tuple[int, int, int]
    original_spacing: tuple[float, float, float]
    resampled_shape: tuple[int, int, int]
    zoom_factors: tuple[float, float, float]
    axes: tuple[AxisFit, AxisFit, AxisFit]

    @classmethod
    def plan(cls, shape_zyx: Sequence[int], spacing_zyx: Sequence[float],
             target_shape: Sequence[int] = VOLUME_SHAPE, new_spacing: float = NEW_SPACING_MM) -> Geometry:
        shape = np.asarray(shape_zyx, dtype=np.int64)
        resampled = np.round(shape * np.asarray(spacing_zyx, dtype=np.float64) / new_spacing).astype(np.int64)
        if resampled.max() > MAX_RESAMPLED:
            raise DataError(f"a scan of shape {tuple(shape_zyx)} (z, y, x; DimSize) at spacing {tuple(spacing_zyx)} mm "
                            f"(ElementSpacing) resamples to {tuple(resampled.tolist())} voxels of {new_spacing} mm, "
                            f"more than {MAX_RESAMPLED} along an axis: the header's ElementSpacing or DimSize is "
                            "wrong (a LUNA16 scan spans at most ~500 mm)")
        if resampled.min() < 1:
            raise DataError(f"a scan of shape {tuple(shape_zyx)} (z, y, x) at spacing {tuple(spacing_zyx)} mm "
                            f"resamples to {tuple(resampled.tolist())} voxels of {new_spacing} mm; it is too small")
        factors = resampled / shape
        axes = tuple(AxisFit.fit(a, int(r), int(t)) for a, r, t in zip(AXES, resampled, target_shape, strict=True))
        return cls(tuple(int(s) for s in shape), tuple(float(s) for s in spacing_zyx),  # type: ignore[arg-type]
                   tuple(int(r) for r in resampled), tuple(float(f) for f in factors), axes)  # type: ignore[arg-type]

    @property
    def target_shape(self) -> tuple[int, int, int]:
        return tuple(a.target for a in self.axes)  # type: ignore[return-value]

    @property
    def resampled_spacing(self) -> tuple[float, float, float]:
        """Effective voxel size of the resampled grid (mm). ``zoom`` maps the first and last voxel centres onto
        each other (``grid_mode=False``), so it is ``spacing·(n-1)/(m-1)``, close to but not exactly 2.5."""
        return tuple(s * (n - 1) / (m - 1) if m > 1 else s * n  # type: ignore[return-value]
                     for s, n, m in zip(self.original_spacing, self.original_shape, self.resampled_shape, strict=True))

    def original_index(self, normalized_zyx: Sequence[float]) -> tuple[float, float, float]:
        """The (fractional) voxel index in the original scan that normalised voxel ``normalized_zyx`` samples."""
        out = []
        for index, fit, n, m in zip(normalized_zyx, self.axes, self.original_shape, self.resampled_shape,
                                    strict=True):
            resampled = index + fit.shift
            out.append(resampled * (n - 1) / (m - 1) if m > 1 else 0.0)
        return tuple(out)  # type: ignore[return-value]

    def corrected_origin_xyz(self, origin_xyz: Sequence[float]) -> tuple[float, float, float]:
        """Physical position of normalised voxel (0, 0, 0) - the origin the reference should have saved."""
        first = self.original_index((0, 0, 0))
        spacing_xyz = self.original_spacing[::-1]
        return tuple(float(o + i * s) for o, i, s in zip(origin_xyz, first[::-1], spacing_xyz, strict=True))  # type: ignore


def resample(volume: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Step 1: the cubic zoom of ``volume`` ``(Z, Y, X)`` int16 to ``geometry.resampled_shape``, int16 result."""
    from scipy import ndimage

    if volume.dtype != np.int16:
        raise DataError(f"normalisation expects an int16 volume (LUNA16 stores MET_SHORT), got {volume.dtype}")
    return ndimage.zoom(volume, geometry.zoom_factors, order=ZOOM_ORDER, mode=ZOOM_MODE)


def crop_or_pad(volume: np.ndarray, axes: Sequence[AxisFit], pad_value: int | float) -> np.ndarray:
    """Step 2: centred crop/pad of ``volume`` ``(Z, Y, X)`` per ``axes``; returns ``volume`` itself when every
    axis is ``keep``, else a new array of the target shape and the same dtype filled with ``pad_value``."""
    if volume.shape != tuple(a.resampled for a in axes):
        raise ValueError(f"volume shape {volume.shape} does not match the plan {[a.resampled for a in axes]}")
    if all(a.mode == "keep" for a in axes):
        return volume
    out = np.full(tuple(a.target for a in axes), pad_value, dtype=volume.dtype)
    out[tuple(a.destination for a in axes)] = volume[tuple(a.source for a in axes)]
    return out


def binarize_mask(labels: np.ndarray) -> np.ndarray:
    """Step 4: interpolated labels → 0/1 (values < 1 → 0, then values > 0 → 1), same dtype."""
    return (labels >= 1).astype(labels.dtype)


def normalize_volume(volume: np.ndarray, spacing_zyx: Sequence[float], is_mask: bool,
                     geometry: Geometry | None = None) -> tuple[np.ndarray, Geometry, int]:
    """Steps 1-2 (and 4 for a mask) for ``volume`` ``(Z, Y, X)`` int16: returns the ``(128, 160, 160)`` int16
    volume, its :class:`Geometry` and the pad value used (the resampled minimum)."""
    geometry = geometry or Geometry.plan(volume.shape, spacing_zyx)
    resampled = resample(volume, geometry)
    pad_value = int(resampled.min())
    fitted = crop_or_pad(resampled, geometry.axes, pad_value)
    return (binarize_mask(fitted) if is_mask else fitted), geometry, pad_value


def output_paths(out_root: str | os.PathLike[str], uid: str) -> dict[str, Path]:
    out_root = Path(out_root)
    return {"ct": out_root / NORMALIZED_CT_DIR / f"{uid}.mhd", "mask": out_root / NORMALIZED_MASK_DIR / f"{uid}.mhd",
            "record": out_root / NORMALIZED_CT_DIR / f"{uid}.json"}


def normalize_scan(scan: ScanFiles, out_root: str | os.PathLike[str], layout: Layout | None = None) -> dict[str, Any]:
    """Normalise one scan's CT and mask into ``out_root`` (normalised layout) and return its record (a dict, also
    written as ``normalized_lung_ct/<uid>.json``). Raises :class:`DataError` naming the file on bad input."""
    if scan.ct is None or scan.mask is None:
        problem = scan.problem(layout) if layout is not None else None
        raise DataError(problem or f"scan {scan.uid}: CT {scan.ct} / mask {scan.mask} - one of them is missing")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    # Headers first: a damaged field (an absurd ElementSpacing …) is named before any voxel is read or resampled.
    first = parse_header(scan.ct, CT_TYPES)
    Geometry.plan(first.shape_zyx, first.spacing_zyx)
    ct_image = read_metaimage(scan.ct, CT_TYPES)
    mask_image = read_metaimage(scan.mask, MASK_TYPES)
    identity = {"ct": source_identity(ct_image.header), "mask": source_identity(mask_image.header)}
    timings["read"] = time.perf_counter() - start
    ct_header, mask_header = ct_image.header, mask_image.header
    if ct_header.size_xyz != mask_header.size_xyz or not np.allclose(
            ct_header.spacing_xyz, mask_header.spacing_xyz, rtol=SPACING_RTOL, atol=0):
        raise DataError(f"mask {scan.mask} (size {mask_header.size_xyz}, spacing {mask_header.spacing_xyz}) is not on "
                        f"the grid of CT {scan.ct} (size {ct_header.size_xyz}, spacing {ct_header.spacing_xyz}); "
                        "a LUNA16 mask shares its CT's grid - check that the two files belong together")
    mask_labels = mask_image.array.astype(np.int16, copy=False)

    geometry = Geometry.plan(ct_header.shape_zyx, ct_header.spacing_zyx)
    start = time.perf_counter()
    ct, _, ct_pad = normalize_volume(ct_image.array, ct_header.spacing_zyx, False, geometry)
    timings["ct"] = time.perf_counter() - start
    start = time.perf_counter()
    mask, _, mask_pad = normalize_volume(mask_labels, ct_header.spacing_zyx, True, geometry)
    timings["mask"] = time.perf_counter() - start
    del ct_image, mask_image, mask_labels

    paths = output_paths(out_root, scan.uid)
    record = _record(scan, geometry, ct_header.origin_xyz, ct_header.direction, ct, ct_pad, mask, mask_pad, paths)
    record["source_identity"] = identity
    record = json.loads(json.dumps(record))  # return exactly what a reader of the JSON gets (lists, not tuples)
    start = time.perf_counter()
    spacing = (NEW_SPACING_MM,) * 3
    with StagedOutputs() as stage:
        stage.metaimage(ct, paths["ct"], spacing, ct_header.origin_xyz, compress=False)
        stage.metaimage(mask, paths["mask"], spacing, ct_header.origin_xyz, compress=True)
        timings["write"] = time.perf_counter() - start
        record["seconds"] = {k: round(v, 3) for k, v in timings.items()}
        stage.json(record, paths["record"])
    return record


def _record(scan: ScanFiles, geometry: Geometry, origin_xyz: Sequence[float], direction: Sequence[float],
            ct: np.ndarray, ct_pad: int, mask: np.ndarray, mask_pad: int, paths: dict[str, Path]) -> dict[str, Any]:
    import scipy
    import SimpleITK

    return {
        "record_version": RECORD_VERSION,
        "uid": scan.uid,
        "procedure": "the port's normalize_dataset.py: cubic B-spline zoom (order 3, mode nearest, int16 out) to "
                     "2.5 mm, centred crop/pad to (128, 160, 160) with the resampled minimum, masks thresholded at 1",
        "source": {"ct": str(Path(scan.ct).absolute()), "mask": str(Path(scan.mask).absolute())},
        "original": {"shape_zyx": geometry.original_shape, "spacing_zyx": geometry.original_spacing,
                     "origin_xyz": tuple(origin_xyz), "direction": tuple(direction)},
        "new_spacing_mm": NEW_SPACING_MM,
        "zoom": {"order": ZOOM_ORDER, "mode": ZOOM_MODE, "factors_zyx": geometry.zoom_factors,
                 "resampled_shape_zyx": geometry.resampled_shape,
                 "resampled_spacing_zyx": geometry.resampled_spacing},
        "crop_pad": {"target_shape_zyx": geometry.target_shape, "axes": [asdict(a) for a in geometry.axes]},
        "ct": {"file": str(paths["ct"]), "pad_value": ct_pad, "min": int(ct.min()), "max": int(ct.max())},
        "mask": {"file": str(paths["mask"]), "pad_value": mask_pad, "foreground_voxels": int(np.count_nonzero(mask))},
        "saved_origin_xyz": tuple(origin_xyz),
        "corrected_origin_xyz": geometry.corrected_origin_xyz(origin_xyz),
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "SimpleITK": SimpleITK.__version__},
    }


def _normalize_job(scan: ScanFiles, out_root: str, layout: Layout | None) -> dict[str, Any]:
    try:
        return normalize_scan(scan, out_root, layout)
    except BaseException:
        # A failed scan must not keep outputs from an earlier run that a later step would take for current.
        for path in output_paths(out_root, scan.uid).values():
            if path.suffix == ".mhd":
                remove_metaimage(path)
            else:
                path.unlink(missing_ok=True)
        raise


def normalize_dataset(scans: Sequence[ScanFiles], out_root: str | os.PathLike[str], jobs: int = 1,
                      layout: Layout | None = None, progress: Callable[[str, bool], None] | None = None,
                      job: Callable[[ScanFiles], dict[str, Any]] | None = None) -> ScanResults[dict[str, Any]]:
    """Normalise ``scans`` into ``out_root`` with ``jobs`` processes; returns each scan's record or failure.

    ``job`` replaces the per-scan function (a picklable callable taking a :class:`ScanFiles`), for tests.
    """
    out_root = Path(out_root)
    for folder in (out_root / NORMALIZED_CT_DIR, out_root / NORMALIZED_MASK_DIR):
        ensure_dir(folder)
        remove_stale_staged(folder)  # what a killed run left behind
    work = job or functools.partial(_normalize_job, out_root=str(out_root), layout=layout)
    return run_per_scan(list(scans), work, lambda s: s.uid, jobs, progress)
