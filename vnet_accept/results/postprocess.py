"""Judging a result folder: every output matched to its tile by stem, scored against the masks (SPEC §5, §6).

:func:`postprocess_results` takes a folder written by ``ais_bench``, the legacy ``benchmark`` tool or
``vnet-accept infer`` (any of the three layouts of :mod:`vnet_accept.results.layouts`), on this machine or
copied from another, and returns a :class:`PostprocessReport`: the port's line, pooled / per-volume /
per-tile counts, error rate, Dice, IoU, the bootstrap interval and the comparison with the published figure.

Which file belongs to which tile:

* with the preprocessing's manifest (``--prep prep_bin``): ``<stem>_<k>`` is the tile the manifest lists for
  ``<stem>.bin`` (and the mask must agree with the lung-voxel count the manifest recorded for that tile);
* without it: the port's numbering is rebuilt from the masks - ``i`` running over (UID order × tile order),
  tiles with an empty mask skipped (SPEC §4.3) - so results of the port's own ``vnet_preprocess.py`` can be
  judged too.

Every problem is an error naming the files and tiles (:class:`~vnet_accept.results.layouts.ResultsError`):
a missing output, a truncated or oversized file, a bad ``.npy``, NaN/Inf values, an output of an unknown tile,
the off-by-one output index, duplicates. Files that are not outputs are listed in the report, never ignored
silently. Each mask volume is decoded once, read ahead while the previous scan is scored.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.data.prepare import Manifest
from vnet_accept.data.tiles import TILES_PER_VOLUME, Tile
from vnet_accept.data.uids import UidList
from vnet_accept.errors import DataError, UsageError
from vnet_accept.metrics.accuracy import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    AccuracyAccumulator,
    AccuracyResult,
    MisplacedTile,
    NonFiniteOutput,
)
from vnet_accept.metrics.masks import MaskSource
from vnet_accept.reference import AccuracyReference
from vnet_accept.results.layouts import (
    ResultFolder,
    ResultProblem,
    ResultsError,
    locate_results,
    map_output,
    validate_outputs,
)


@dataclass(frozen=True)
class PlannedTile:
    stem: str
    uid: str
    tile: int
    foreground: int | None  # lung voxels the manifest recorded, None without a manifest

    def label(self) -> str:
        return f"scan {self.uid}, tile {self.tile}"


@dataclass
class PostprocessReport:
    """The outcome of judging one result folder, or outputs streamed from a run without files (``folder`` is
    then None); ``accumulator`` holds the per-tile predictions if kept."""

    folder: ResultFolder | None
    result: AccuracyResult
    reference: AccuracyReference
    uid_source: str
    uids_listed: int
    index_source: str
    tiles_skipped: int
    seconds: float
    mask_reads: dict[str, int]
    run_records: list[dict[str, Any]] = field(default_factory=list)
    accumulator: AccuracyAccumulator | None = field(default=None, repr=False)
    #: Tiles whose output matches another tile's mask far better than their own (None: predictions not kept).
    misplaced: tuple[MisplacedTile, ...] | None = None

    @property
    def uids_used(self) -> int:
        return self.result.volumes

    @property
    def views(self) -> dict[str, float]:
        return self.reference.views(self.result.error_rate_pct)

    @property
    def passed(self) -> bool:
        return self.reference.passes(self.result.error_rate_pct)

    @property
    def tiles_per_s(self) -> float:
        return self.result.tiles / self.seconds if self.seconds > 0 else float("nan")

    @property
    def source(self) -> str:
        """Where the outputs came from: the folder and its layout, or ``streamed``."""
        return f"{self.folder.root} ({self.folder.layout})" if self.folder is not None else "streamed"

    def to_dict(self, per_tile: bool = True) -> dict[str, Any]:
        folder = self.folder
        results = {"streamed": True} if folder is None else {
            "root": str(folder.root), "layout": folder.layout, "how": folder.how,
            "output_dirs": [str(d) for d in folder.output_dirs], "outputs": len(folder.outputs),
            "extras": [str(p) for p in folder.extras], "run_records": self.run_records}
        return {
            "results": results,
            "uid_source": self.uid_source, "uids_listed": self.uids_listed, "uids_used": self.uids_used,
            "index_source": self.index_source, "tiles_skipped_empty_mask": self.tiles_skipped,
            "rule": {"published_error_pct": self.reference.published_error_pct,
                     "tolerance_pp": self.reference.tolerance_pp, "passed": self.passed},
            "views": self.views, "seconds": self.seconds, "tiles_per_s": self.tiles_per_s,
            "mask_reads": self.mask_reads, **self.result.to_dict(per_tile=per_tile),
        }

    def render(self, worst: int = 5) -> str:
        r, v, ref = self.result, self.views, self.reference
        how = f", bootstrap over {r.volumes} volumes, {r.bootstrap.get('resamples')} resamples" if r.ci95_pct else ""
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"results: {self.folder.root} - {self.folder.describe()}" if self.folder is not None else
            "results: streamed from the run into the post-processor (no files written)",
            f"tiles: {r.tiles} of {r.volumes} scans ({self.uid_source}; {self.uids_listed} listed, "
            f"{self.tiles_skipped} tiles skipped for an empty mask), matched by {self.index_source}",
            r.port_line(),
            f"error rate {r.error_rate_pct:.4f} % ({r.ci_text()}{how})",
            f"{verdict}: |{r.error_rate_pct:.4f} - {ref.published_error_pct}| = {abs(v['abs_diff_pp']):.4f} points "
            f"(rule: <= {ref.tolerance_pp} pp); relative change {v['relative_change_pct']:+.1f} %; point accuracy "
            f"{v['point_accuracy_pct']:.4f} % vs {v['published_point_accuracy_pct']:.4f} %",
            f"Dice {r.dice:.4f} pooled, {r.mean_volume_dice:.4f} mean over volumes; IoU {r.iou:.4f} pooled, "
            f"{r.mean_volume_iou:.4f} mean",
        ]
        ranked = sorted(r.per_volume, key=lambda x: -x.error_rate_pct)[:worst]
        if ranked:
            lines.append(f"worst {len(ranked)} of {r.volumes} volumes (uid: tiles, error %, Dice, IoU):")
            lines += [f"  {x.uid}: {len(x.tiles)}, {x.error_rate_pct:.4f} %, {x.dice:.4f}, {x.iou:.4f}"
                      for x in ranked]
        if self.folder is not None and self.folder.extras:
            names = ", ".join(p.name for p in self.folder.extras[:8])
            more = f" and {len(self.folder.extras) - 8} more" if len(self.folder.extras) > 8 else ""
            lines.append(f"note: {len(self.folder.extras)} files are not outputs and were not judged: {names}{more}")
        lines.append(f"post-processed {r.tiles} tiles in {self.seconds:.2f} s ({self.tiles_per_s:.0f} tiles/s)")
        return "\n".join(lines)


def postprocess_results(results_dir: str | os.PathLike[str], *, luna16_root: str | os.PathLike[str] | None = None,
                        manifest: Manifest | None = None, uids: UidList | None = None, layout: str | None = None,
                        reference: AccuracyReference | None = None, masks: MaskSource | None = None,
                        resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                        keep_predictions: bool = False) -> PostprocessReport:
    """Judge the outputs under ``results_dir`` (see the module docstring).

    ``masks`` defaults to the normalised masks under ``luna16_root`` (else the manifest's dataset root).
    Needs ``manifest`` or ``uids``; with both, they must name the same scans. Raises
    :class:`~vnet_accept.results.layouts.ResultsError` for a folder that cannot be judged.
    """
    start = time.perf_counter()
    reference = reference if reference is not None else AccuracyReference()
    if manifest is None and uids is None:
        raise UsageError("post-processing needs the tiles' manifest (--prep) or the UID list (--uids)")
    if manifest is not None and uids is not None and set(manifest.uids) != set(uids.uids):
        only_m = sorted(set(manifest.uids) - set(uids.uids))
        only_u = sorted(set(uids.uids) - set(manifest.uids))
        raise DataError(f"{uids.source} and {manifest.directory} name different scans: {len(only_u)} only in the "
                        f"UID list ({', '.join(only_u[:3])}), {len(only_m)} only in the manifest "
                        f"({', '.join(only_m[:3])}); pass the UID list the tiles were prepared from")
    if masks is None:
        root = luna16_root if luna16_root is not None else (manifest.data.get("dataset_root") if manifest else None)
        if root is None:
            raise UsageError("post-processing needs the masks: pass --luna16 ROOT (the normalised dataset)")
        # With a manifest every tile's lung-voxel count is checked against the one recorded when the tiles were
        # cut (and skipped tiles must be empty): a damaged or different mask shows there, so the .zraw checksum
        # (4 ms a mask, a third of the decoding) is only verified without one.
        masks = MaskSource(root, verify_checksum=manifest is None)
    plan = _manifest_plan(manifest) if manifest is not None else None
    order = list(plan) if plan is not None else list(uids.uids)
    masks.prefetch(order)  # the first masks decode while the folder is listed and checked
    try:
        folder = locate_results(results_dir, layout)
        accumulator, skipped = _score(folder, plan, order, masks, manifest, uids, keep_predictions)
        misplaced = tuple(accumulator.misplaced_tiles()) if keep_predictions else None
    finally:
        masks.close()
    result = accumulator.result(resamples=resamples, seed=seed)
    uid_source, listed = _uid_source(manifest, uids)
    index = (f"file stem via {manifest.directory / 'manifest.json'}" if manifest is not None
             else "the port's numbering rebuilt from the masks (i over UID order x tile order, empty tiles skipped)")
    return PostprocessReport(folder, result, reference, uid_source, listed, index, skipped,
                             time.perf_counter() - start, dict(masks.reads), _read_records(folder),
                             accumulator if keep_predictions else None, misplaced)


def report_from_stream(accumulator: AccuracyAccumulator, masks: MaskSource, manifest: Manifest,
                       reference: AccuracyReference, seconds: float, resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> PostprocessReport:
    """The report of outputs a run fed straight into ``accumulator`` (keyed by the manifest's (UID, tile)).

    Every manifest tile must have been scored exactly once; a missing one is an error naming it, as for a folder.
    """
    scored = set(accumulator.result(resamples=1).counts_by_tile())
    missing = [e for e in manifest.entries if e.key not in scored]
    if missing:
        names = ", ".join(f"{e.uid}/{e.tile}" for e in missing[:5])
        raise DataError(f"the streamed run scored {len(scored)} of {len(manifest)} tiles; missing {len(missing)} "
                        f"({names}); the run stopped early — run it again")
    uid_source, listed = _uid_source(manifest, None)
    return PostprocessReport(None, accumulator.result(resamples=resamples, seed=seed), reference, uid_source, listed,
                             f"(UID, tile) keys of {manifest.directory / 'manifest.json'}, streamed",
                             len(manifest.skipped), seconds, dict(masks.reads), [], accumulator,
                             tuple(accumulator.misplaced_tiles()) if accumulator.keep_predictions else None)


def _score(folder: ResultFolder, plan: dict[str, list[PlannedTile]] | None, order: list[str], masks: MaskSource,
           manifest: Manifest | None, uids: UidList | None, keep_predictions: bool
           ) -> tuple[AccuracyAccumulator, int]:
    """Validate the folder, then score every planned tile in order; every problem ends in one ResultsError."""
    labels = {t.stem: t.label() for tiles in plan.values() for t in tiles} if plan is not None else None
    usable, problems = validate_outputs(folder, labels)
    if problems:
        raise ResultsError(folder.root, problems, folder.describe())
    accumulator = AccuracyAccumulator(masks, keep_predictions=keep_predictions)
    planned_stems: set[str] = set()
    skipped = sum(TILES_PER_VOLUME - len(t) for t in plan.values()) if plan is not None else 0
    for position, (uid, tiles) in enumerate(_iterate(order, plan, masks)):
        masks.prefetch(order[position + 1:])
        if plan is None:
            skipped += TILES_PER_VOLUME - len(tiles)
        for t in tiles:
            planned_stems.add(t.stem)
            found = usable.get(t.stem)
            if found is None:
                problems.append(ResultProblem("missing", f"{t.stem}.bin ({t.label()})", "no output file"))
                continue
            try:
                counts = accumulator.add(uid, t.tile, map_output(found.path))
            except NonFiniteOutput as exc:
                problems.append(ResultProblem("nonfinite", f"{found.path.name} ({t.label()})",
                                              f"{exc.count:,} NaN/Inf values"))
                continue
            if t.foreground is not None and counts.mask_voxels != t.foreground:
                raise DataError(f"the mask of scan {uid} under {masks.describe()} has {counts.mask_voxels:,} lung "
                                f"voxels in tile {t.tile}; the tiles in {manifest.directory} were cut with "
                                f"{t.foreground:,}: pass the --luna16 root the tiles were prepared from")
        if plan is not None:
            _check_skipped_tiles(uid, {t.tile for t in tiles}, masks, manifest)
    if plan is None:  # without a manifest, unknown outputs show only now
        problems += [ResultProblem("unknown_tile", f.path.name, f"input {f.stem}.bin is not a tile of "
                                   f"{uids.describe()} (port numbering)") for s, f in usable.items()
                     if s not in planned_stems]
    if problems:
        raise ResultsError(folder.root, problems, folder.describe())
    return accumulator, skipped


def _manifest_plan(manifest: Manifest) -> dict[str, list[PlannedTile]]:
    plan: dict[str, list[PlannedTile]] = {uid: [] for uid in manifest.uids}
    for e in manifest.entries:
        plan.setdefault(e.uid, []).append(PlannedTile(e.stem, e.uid, e.tile, e.foreground_voxels))
    return plan


def _iterate(order: list[str], plan: dict[str, list[PlannedTile]] | None,
             masks: MaskSource) -> Iterator[tuple[str, list[PlannedTile]]]:
    """Scans in order with their tiles; without a manifest, the port's numbering is rebuilt from the masks."""
    index = 0
    for uid in order:
        if plan is not None:
            yield uid, plan[uid]
            continue
        volume = masks.volume(uid)
        kept = [k for k in range(TILES_PER_VOLUME) if Tile(k).crop(volume).any()]
        yield uid, [PlannedTile(str(index + i), uid, k, None) for i, k in enumerate(kept)]
        index += len(kept)


def _check_skipped_tiles(uid: str, planned: set[int], masks: MaskSource, manifest: Manifest) -> None:
    """A tile the manifest skipped for an empty mask must still be empty in the mask judged against."""
    volume = masks.volume(uid)
    for k in range(TILES_PER_VOLUME):
        if k not in planned and Tile(k).crop(volume).any():
            raise DataError(f"the mask of scan {uid} under {masks.describe()} has lung in tile {k}, which "
                            f"{manifest.directory} skipped for an empty mask: pass the --luna16 root the tiles were "
                            "prepared from")


def _uid_source(manifest: Manifest | None, uids: UidList | None) -> tuple[str, int]:
    if uids is not None:
        return uids.describe(), len(uids)
    listed = int(manifest.data.get("uids_requested", len(manifest.uids)))
    return f"{len(manifest.uids)} UIDs from {manifest.data.get('uid_source', manifest.directory)}", listed


def _read_records(folder: ResultFolder) -> list[dict[str, Any]]:
    records = []
    for path in folder.run_records:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            records.append({"file": str(path), "unreadable": str(exc)})
    return records


def save_volume_npz(path: str | os.PathLike[str], report: PostprocessReport, uid: str,
                    luna16_root: str | os.PathLike[str]) -> Path:
    """Write ``ct`` (128, 160, 160) int16 HU (the normalised CT), ``mask`` and ``prediction`` (128, 160, 160)
    uint8 and ``tiles`` (the evaluated tile indices) of scan ``uid`` to ``path`` (.npz, compressed).

    Needs a report made with ``keep_predictions=True``; tiles not evaluated are 0 in ``prediction``."""
    from vnet_accept.data.prepare import load_normalized_ct, load_normalized_mask
    from vnet_accept.io_utils import atomic_output

    if report.accumulator is None:
        raise ValueError("the report kept no predictions; post-process with keep_predictions=True")
    prediction = report.accumulator.prediction_volume(uid)
    ct = load_normalized_ct(luna16_root, uid)
    mask = load_normalized_mask(luna16_root, uid).astype(np.uint8)
    tiles = next(v.tiles for v in report.result.per_volume if v.uid == uid)
    path = Path(path)
    with atomic_output(path) as fh:
        np.savez_compressed(fh, ct=ct, mask=mask, prediction=prediction, tiles=np.asarray(tiles, dtype=np.int8),
                            uid=np.asarray(uid))
    return path
