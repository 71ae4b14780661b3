"""Error rate, Dice and IoU of VNet outputs against the lung masks, per tile, per volume and pooled (SPEC §6).

Vocabulary: an *output* is one tile's ``(64, 80, 80, 2)`` float32 log-probabilities (D, H, W, C; class 1 =
lung), a batch of them ``(N, 64, 80, 80, 2)``; a *mask* is ``(64, 80, 80)`` bool for a tile, ``(128, 160,
160)`` bool for a volume (z, y, x).

* **Prediction**: class 1 where ``out[..., 1] > out[..., 0]``. This is the port's ``argmax`` over the class
  axis exactly, ties going to class 0 (``argmax`` returns the first maximum), without the reshape and the
  index array.
* **Counts** per tile: ``tp`` (lung predicted lung), ``fp`` (background predicted lung), ``fn`` (lung
  predicted background), ``voxels`` (409,600); ``incorrect = fp + fn``. Volumes and the pool add these up.
* **Error rate** = 100 × incorrect / voxels of the tiles evaluated (tiles skipped for an empty mask are not
  part of it - as in the port). The port's line is :func:`format_port_line`.
* **Dice** = 2·tp / (2·tp + fp + fn); **IoU** = tp / (tp + fp + fn). *Empty-mask rule*: when mask and
  prediction are both empty the denominator is 0 and both are 1.0 (perfect agreement, nothing to find); a
  prediction on an empty mask gives 0.0. Per volume they are computed over the reassembled volume (the voxels
  of its evaluated tiles); "pooled" means over every evaluated voxel, "mean" the unweighted mean over volumes.
* **Confidence interval** of the pooled error rate: percentile bootstrap over *volumes* (voxel errors within a
  scan are strongly correlated, so resampling voxels or tiles would be far too narrow), seeded; none below
  :data:`MIN_CI_VOLUMES` volumes (:func:`ci_withheld` says why).

Two forms, as MONAI does it: pure functions (:func:`dice`, :func:`iou`, :func:`bootstrap_error_ci`) and the
stateful :class:`AccuracyAccumulator` with ``add`` / ``result`` / ``reset``, which a pass can feed batch by batch
without writing files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vnet_accept.data.tiles import TILE_SHAPE, TILE_VOXELS, Tile, merge_tiles
from vnet_accept.errors import DataError
from vnet_accept.metrics.masks import MaskSource

OUTPUT_SHAPE = (*TILE_SHAPE, 2)
PREDICTION_RULE = "class 1 where out[..., 1] > out[..., 0] (= arg-max over the class axis, ties to class 0)"
EMPTY_RULE = "Dice and IoU are 1.0 when mask and prediction are both empty, 0.0 for a prediction on an empty mask"
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
CI_LEVEL = 0.95
#: Fewest volumes the pooled error rate gets a bootstrap interval for: with fewer, the resamples take a handful of
#: values (2 volumes: 3) and the "interval" is about the range of the per-volume rates, not a 95 % interval.
MIN_CI_VOLUMES = 10
PORT_LINE_FORMAT = "Test set: Error: {incorrect}/{total} ({pct:.4f}%)"
_PORT_LINE_RE = re.compile(r"Test set: Error: (?P<incorrect>\d+)/(?P<total>\d+) \((?P<pct>[-+0-9.eE]+|nan)%\)")


class NonFiniteOutput(DataError):
    """An output holding NaN or Inf: the tile cannot be scored (``count`` values are not finite)."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


# --- pure functions ----------------------------------------------------------------------------------------------

def dice(tp: int, fp: int, fn: int) -> float:
    """2·tp / (2·tp + fp + fn); 1.0 when all three are 0 (both empty)."""
    denominator = 2 * tp + fp + fn
    return 2.0 * tp / denominator if denominator else 1.0


def iou(tp: int, fp: int, fn: int) -> float:
    """tp / (tp + fp + fn); 1.0 when all three are 0 (both empty)."""
    denominator = tp + fp + fn
    return tp / denominator if denominator else 1.0


def error_rate_pct(incorrect: int, total: int) -> float:
    return 100.0 * incorrect / total if total else float("nan")


def format_port_line(incorrect: int, total: int) -> str:
    """The port's verdict line, e.g. ``Test set: Error: 2479051/439091200 (0.5646%)``."""
    return PORT_LINE_FORMAT.format(incorrect=incorrect, total=total, pct=error_rate_pct(incorrect, total))


@dataclass(frozen=True)
class PortLine:
    incorrect: int
    total: int
    pct: float


def parse_port_line(text: str) -> PortLine:
    """The first ``Test set: Error: a/b (p%)`` line in ``text`` (ours or the port's script's output)."""
    match = _PORT_LINE_RE.search(text)
    if match is None:
        raise ValueError("no 'Test set: Error: <incorrect>/<total> (<pct>%)' line in the text")
    return PortLine(int(match["incorrect"]), int(match["total"]), float(match["pct"]))


def bootstrap_error_ci(incorrect: Sequence[int], total: Sequence[int], resamples: int = DEFAULT_RESAMPLES,
                       level: float = CI_LEVEL, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """Percentile-bootstrap interval of the pooled error rate (percent), resampling volumes with replacement.

    ``incorrect[i]`` / ``total[i]`` are volume ``i``'s counts; each resample draws as many volumes as there are
    and takes 100·Σincorrect / Σtotal. One volume gives a zero-width interval at its own rate.
    """
    inc = np.asarray(incorrect, dtype=np.float64)
    tot = np.asarray(total, dtype=np.float64)
    if inc.shape != tot.shape or inc.ndim != 1 or not len(inc):
        raise ValueError("need one incorrect and one total count per volume, at least one volume")
    if len(inc) == 1:
        rate = error_rate_pct(inc[0], tot[0])
        return rate, rate
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(inc), size=(resamples, len(inc)))
    rates = 100.0 * inc[picks].sum(axis=1) / tot[picks].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(rates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def ci_withheld(volumes: int) -> str | None:
    """Why the pooled error rate of ``volumes`` volumes gets no interval (``"2 volumes: too few for an interval"``),
    or None when it gets one."""
    if volumes >= MIN_CI_VOLUMES:
        return None
    return f"{volumes} volume{'' if volumes == 1 else 's'}: too few for an interval, which needs {MIN_CI_VOLUMES}"


# --- results -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TileCounts:
    """Confusion counts of one tile (``uid``, ``tile`` 0-7)."""

    uid: str
    tile: int
    tp: int
    fp: int
    fn: int
    voxels: int = TILE_VOXELS

    @property
    def incorrect(self) -> int:
        return self.fp + self.fn

    @property
    def mask_voxels(self) -> int:
        return self.tp + self.fn

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "incorrect": self.incorrect}


class _Scores:
    """Error rate, Dice and IoU of the counts ``tp``, ``fp``, ``fn`` over ``total`` voxels."""

    tp: int
    fp: int
    fn: int
    total: int

    @property
    def incorrect(self) -> int:
        return self.fp + self.fn

    @property
    def error_rate_pct(self) -> float:
        return error_rate_pct(self.incorrect, self.total)

    @property
    def dice(self) -> float:
        return dice(self.tp, self.fp, self.fn)

    @property
    def iou(self) -> float:
        return iou(self.tp, self.fp, self.fn)


@dataclass(frozen=True)
class VolumeResult(_Scores):
    """One scan's evaluated tiles reassembled: counts, error rate, Dice and IoU."""

    uid: str
    tiles: tuple[int, ...]
    tp: int
    fp: int
    fn: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"uid": self.uid, "incorrect": self.incorrect, "total": self.total,
                "error_rate_pct": self.error_rate_pct, "dice": self.dice, "iou": self.iou,
                "tiles": list(self.tiles), "tp": self.tp, "fp": self.fp, "fn": self.fn}


def _pooled(count: str) -> property:
    """The sum of one count over every tile of an :class:`AccuracyResult`."""
    return property(lambda self: sum(getattr(t, count) for t in self.per_tile))


@dataclass(frozen=True)
class AccuracyResult(_Scores):
    """Pooled, per-volume and per-tile accuracy of one run, with the bootstrap interval of the error rate
    (``ci95_pct`` None below :data:`MIN_CI_VOLUMES` volumes)."""

    per_tile: tuple[TileCounts, ...]
    per_volume: tuple[VolumeResult, ...]
    ci95_pct: tuple[float, float] | None
    bootstrap: dict[str, Any] = field(default_factory=dict)

    tp = _pooled("tp")
    fp = _pooled("fp")
    fn = _pooled("fn")
    total = _pooled("voxels")

    @property
    def tiles(self) -> int:
        return len(self.per_tile)

    @property
    def volumes(self) -> int:
        return len(self.per_volume)

    @property
    def mean_volume_dice(self) -> float:
        return float(np.mean([v.dice for v in self.per_volume])) if self.per_volume else float("nan")

    @property
    def mean_volume_iou(self) -> float:
        return float(np.mean([v.iou for v in self.per_volume])) if self.per_volume else float("nan")

    def port_line(self) -> str:
        return format_port_line(self.incorrect, self.total)

    def ci_text(self) -> str:
        """``95 % CI 0.4036–0.5244 %``, or why there is none."""
        if self.ci95_pct is None:
            return f"no 95 % CI — {ci_withheld(self.volumes)}"
        return f"95 % CI {self.ci95_pct[0]:.4f}–{self.ci95_pct[1]:.4f} %"

    def counts_by_tile(self) -> dict[tuple[str, int], int]:
        """``{(uid, tile): incorrect}`` - what batch-invariance and layout checks compare."""
        return {(t.uid, t.tile): t.incorrect for t in self.per_tile}

    def worst_volume(self) -> VolumeResult:
        if not self.per_volume:
            raise ValueError("no volumes were evaluated")
        return max(self.per_volume, key=lambda v: (v.error_rate_pct, v.uid))

    def to_dict(self, per_tile: bool = True) -> dict[str, Any]:
        data = {"incorrect": self.incorrect, "total": self.total, "error_rate_pct": self.error_rate_pct,
                "tiles": self.tiles, "volumes": self.volumes, "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "dice": self.dice, "iou": self.iou, "mean_volume_dice": self.mean_volume_dice,
                "mean_volume_iou": self.mean_volume_iou,
                "ci95_pct": None if self.ci95_pct is None else list(self.ci95_pct),
                "bootstrap": dict(self.bootstrap), "port_line": self.port_line(),
                "prediction_rule": PREDICTION_RULE, "empty_rule": EMPTY_RULE,
                "per_volume": [v.to_dict() for v in self.per_volume]}
        if per_tile:
            data["per_tile"] = [t.to_dict() for t in self.per_tile]
        return data


# --- the streaming accumulator -----------------------------------------------------------------------------------

#: A tile is a misplacement suspect when its error rate is above both of these (percent; times the median tile's
#: rate - the median, because the misplaced tiles themselves inflate a pooled rate).
MISPLACED_MIN_ERROR_PCT = 2.0
MISPLACED_MEDIAN_FACTOR = 5.0
#: ... and it is reported as holding another suspect's output when its prediction matches that tile's mask this
#: many times better than its own. At most this many suspects (the worst) are cross-checked.
MISPLACED_MATCH_FACTOR = 5.0
MISPLACED_MAX_SUSPECTS = 64


@dataclass(frozen=True)
class MisplacedTile:
    """A tile whose prediction matches another tile's mask far better than its own: its output file most likely
    holds that tile's output (outputs swapped, or matched to tiles by position)."""

    key: tuple[str, int]
    own_error_pct: float
    holds: tuple[str, int]
    error_vs_holds_pct: float

    def line(self) -> str:
        uid, tile = self.key
        other_uid, other_tile = self.holds
        where = f"tile {other_tile}" if other_uid == uid else f"scan {other_uid}, tile {other_tile}"
        return (f"scan {uid}, tile {tile} (error {self.own_error_pct:.2f} %) holds the output of {where} "
                f"(error against that tile's mask {self.error_vs_holds_pct:.2f} %)")


class AccuracyAccumulator:
    """Scores outputs as they arrive: ``add(uid, tile, output)`` (or ``add_batch``), then ``result()``.

    ``masks`` is a :class:`~vnet_accept.metrics.masks.MaskSource` or ``{uid: (128, 160, 160) bool}``. Feed a
    scan's tiles together where possible: its mask is decoded once while it stays in the source's cache.
    With ``keep_predictions`` each tile's prediction is kept bit-packed (51 KB a tile) so that
    :meth:`prediction_volume` can reassemble a scan afterwards (e.g. the worst one, for a picture).

    Raises :class:`NonFiniteOutput` for an output with NaN/Inf (the tile is not counted), ``ValueError`` for
    a wrong shape or a tile added twice. Fed by an inference pass without writing files::

        with MaskSource(dataset_root) as masks:
            acc = AccuracyAccumulator(masks)
            run_inference(runner, manifest, None, batch_size=16,
                          sink=lambda entries, outputs: acc.add_batch([e.key for e in entries], outputs))
        result = acc.result()  # AccuracyResult: port_line(), error_rate_pct, per_volume, ci95_pct, ...
    """

    def __init__(self, masks: MaskSource | Mapping[str, np.ndarray], keep_predictions: bool = True) -> None:
        self.masks = masks if isinstance(masks, MaskSource) else MaskSource(arrays=masks)
        self.keep_predictions = keep_predictions
        self.reset()

    def reset(self) -> None:
        self._tiles: dict[tuple[str, int], TileCounts] = {}
        self._packed: dict[tuple[str, int], np.ndarray] = {}
        self._diff = np.empty(TILE_SHAPE, dtype=np.float32)  # per-tile scratch buffers, reused
        self._prediction = np.empty(TILE_SHAPE, dtype=bool)
        self._xor = np.empty(TILE_SHAPE, dtype=bool)

    def __len__(self) -> int:
        return len(self._tiles)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._tiles

    def add(self, uid: str, tile: int, output: np.ndarray) -> TileCounts:
        """Score one tile's output ``(64, 80, 80, 2)`` (a leading batch axis of 1 is accepted)."""
        key = (uid, int(tile))
        Tile(key[1])  # validates the index
        if key in self._tiles:
            raise ValueError(f"scan {uid} tile {tile} was already added; every tile is scored once")
        output = np.asarray(output)
        if output.shape == (1, *OUTPUT_SHAPE):
            output = output[0]
        if output.shape != OUTPUT_SHAPE:
            raise ValueError(f"scan {uid} tile {tile}: output shape {output.shape}, expected {OUTPUT_SHAPE} "
                             "(D, H, W, 2)")
        prediction = self._predict(uid, key[1], output)
        # Two counts: wrong = fp + fn and predicted = tp + fp, with the mask's lung voxels (tp + fn) counted once
        # per tile - the confusion counts in fewer passes.
        wrong = int(np.count_nonzero(np.bitwise_xor(prediction, self.masks.tile(uid, key[1]), out=self._xor)))
        predicted = int(np.count_nonzero(prediction))
        actual = self.masks.lung_voxels(uid, key[1])
        tp = (predicted + actual - wrong) // 2
        counts = TileCounts(uid, key[1], tp, predicted - tp, actual - tp, int(prediction.size))
        self._tiles[key] = counts
        if self.keep_predictions:
            self._packed[key] = np.packbits(prediction)
        return counts

    def _predict(self, uid: str, tile: int, output: np.ndarray) -> np.ndarray:
        """The prediction (module docs) and the NaN/Inf check in two passes over the output (into reused buffers).

        ``d = out[..., 1] - out[..., 0]`` in float32: for finite operands the rounded difference is 0 only when
        they are equal and keeps the sign of the exact one (overflow gives a signed Inf), so ``d > 0`` is
        ``out[..., 1] > out[..., 0]``; and ``d`` is finite only when both operands are (Inf - Inf and NaN give
        NaN), except for a finite difference overflowing, which the exact check below sorts out."""
        with np.errstate(over="ignore", invalid="ignore"):  # both handled below: no warning for an expected case
            d = np.subtract(output[..., 1], output[..., 0], out=self._diff)
        if np.isfinite(d).all():
            return np.greater(d, 0, out=self._prediction)
        finite = np.isfinite(output)
        if not finite.all():
            bad = int(output.size - np.count_nonzero(finite))
            raise NonFiniteOutput(f"scan {uid} tile {tile}: {bad:,} of {output.size:,} output values are NaN or "
                                  "Inf", bad)
        return np.greater(output[..., 1], output[..., 0], out=self._prediction)

    def add_batch(self, keys: Sequence[tuple[str, int]], outputs: np.ndarray) -> list[TileCounts]:
        """Score ``outputs`` ``(N, 64, 80, 80, 2)`` for the tiles ``keys`` = [(uid, tile), ...] in that order."""
        if len(keys) != len(outputs):
            raise ValueError(f"{len(keys)} tile keys for {len(outputs)} outputs")
        return [self.add(uid, tile, out) for (uid, tile), out in zip(keys, outputs)]

    def tile_prediction(self, uid: str, tile: int) -> np.ndarray:
        """``(64, 80, 80)`` bool prediction of a scored tile (needs ``keep_predictions``)."""
        if not self.keep_predictions:
            raise ValueError("predictions were not kept (keep_predictions=False)")
        try:
            packed = self._packed[(uid, tile)]
        except KeyError:
            raise KeyError(f"scan {uid} tile {tile} was not scored") from None
        return np.unpackbits(packed, count=TILE_VOXELS).reshape(TILE_SHAPE).astype(bool)

    def prediction_volume(self, uid: str) -> np.ndarray:
        """``(128, 160, 160)`` uint8 prediction of a scan reassembled from its scored tiles (tiles that were not
        evaluated - skipped for an empty mask - are 0)."""
        tiles = {k: self.tile_prediction(uid, k).astype(np.uint8) for (u, k) in self._tiles if u == uid}
        if not tiles:
            raise KeyError(f"no tile of scan {uid} was scored")
        return merge_tiles(tiles, fill=0)

    def misplaced_tiles(self) -> list[MisplacedTile]:
        """Tiles whose kept prediction matches another suspect tile's mask far better than their own (thresholds
        above). Needs ``keep_predictions`` and the masks still readable. A model that is wrong everywhere (random
        weights) has no suspects: every tile is as far from every mask."""
        if not self.keep_predictions:
            raise ValueError("misplacement needs the predictions: create the accumulator with keep_predictions=True")
        tiles = list(self._tiles.values())
        if not tiles:
            return []
        median = float(np.median([100.0 * t.incorrect / t.voxels for t in tiles]))
        limit = max(MISPLACED_MIN_ERROR_PCT, MISPLACED_MEDIAN_FACTOR * median)
        suspects = sorted((t for t in tiles if 100.0 * t.incorrect / t.voxels > limit),
                          key=lambda t: -t.incorrect / t.voxels)[:MISPLACED_MAX_SUSPECTS]
        found = []
        for t in suspects:
            key = (t.uid, t.tile)
            prediction = np.unpackbits(self._packed[key], count=t.voxels).reshape(TILE_SHAPE).astype(bool)
            own = 100.0 * t.incorrect / t.voxels
            for other in suspects:
                if other is t:
                    continue
                mask = self.masks.tile(other.uid, other.tile)
                versus = 100.0 * np.count_nonzero(prediction != mask) / t.voxels
                if versus * MISPLACED_MATCH_FACTOR < own:
                    found.append(MisplacedTile(key, own, (other.uid, other.tile), float(versus)))
                    break
        return found

    def result(self, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> AccuracyResult:
        """Pooled, per-volume (scans in the order their first tile arrived) and per-tile results."""
        per_tile = tuple(self._tiles.values())
        by_uid: dict[str, list[TileCounts]] = {}
        for t in per_tile:
            by_uid.setdefault(t.uid, []).append(t)
        volumes = tuple(
            VolumeResult(uid, tuple(sorted(t.tile for t in tiles)), sum(t.tp for t in tiles),
                         sum(t.fp for t in tiles), sum(t.fn for t in tiles), sum(t.voxels for t in tiles))
            for uid, tiles in by_uid.items())
        ci = None if ci_withheld(len(volumes)) else bootstrap_error_ci(
            [v.incorrect for v in volumes], [v.total for v in volumes], resamples, seed=seed)
        info = {"resamples": resamples, "seed": seed, "level": CI_LEVEL, "over": "volumes",
                "method": "percentile bootstrap of the pooled error rate"}
        return AccuracyResult(per_tile, volumes, ci, info)
