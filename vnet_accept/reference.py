"""The reference numbers the gate judges against: one place, each with its source (SPEC §4, §6, §7).

The limits the gate judges with are in :mod:`vnet_accept.tolerances`. Everything configurable from the command line
/ ini (:mod:`vnet_accept.options`) takes its default from these two modules; the report always prints the values
actually used.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- Accuracy (SPEC §6) -------------------------------------------------------------------------------------
#: Published error rate of VNet on the LUNA16 test split, percent (upstream README; Dice 0.9825).
PUBLISHED_ERROR_PCT = 0.355
PUBLISHED_ERROR_SOURCE = ("upstream VNet's published error rate (the mattmacy/vnet.pytorch README: 0.355 % error, "
                          "Dice 0.9825)")
#: Gate default: |error - published| <= this many percentage points ("accuracy drop within 1 %").
TOLERANCE_PP = 1.0
#: What the reference port measured on an Ascend 310 (bs1 and bs16): incorrect / total voxels.
PORT_310_INCORRECT = 2_479_051
PORT_310_TOTAL = 439_091_200
PORT_310_ERROR_PCT = 0.5646
PORT_310_ERROR_SOURCE = "the reference port's published result on an Ascend 310, the same at bs1 and at bs16"
#: Tiles of the 134-scan test split (none is skipped for an empty mask there).
TEST_SPLIT_SCANS = 134
TEST_SPLIT_TILES = 1_072

# --- Performance (SPEC §7) ----------------------------------------------------------------------------------
#: NVIDIA T4 (TensorRT 7.2.3.4, fp16) thresholds in frames per second by batch size, with the statistic each
#: was computed from. The port's table mixes the median (bs1) with the mean (others); we keep its values and
#: say so in every report.
T4_FPS = {1: 10.31899, 4: 10.95101, 8: 10.01912, 16: 10.15731, 32: 9.44}
T4_FPS_BASIS = {1: "median", 4: "mean", 8: "mean", 16: "mean", 32: "mean"}
#: How the T4 figures were measured (the port's table).
T4_GPU = "NVIDIA T4"
T4_TENSORRT_VERSION = "7.2.3.4"
T4_SETUP = f"{T4_GPU}, TensorRT {T4_TENSORRT_VERSION}, fp16"
#: The port's Ascend 310 per-chip "Interface throughputRate" figures (samples/s).
PORT_310_CHIP_FPS = {1: 6.10496, 4: 6.67466, 8: 6.41992, 16: 6.49396, 32: 6.35151}
#: Chips per card: the tools measure one chip (device id); a card's figure is this many times that.
CHIPS_PER_CARD = {"Ascend310": 4, "Ascend310P": 1}
#: Batch sizes whose ratio decides the placement tier.
AUTHORITATIVE_BATCH_SIZES = (1, 16)
#: Placement tiers by card-fps / T4-fps ratio: < 1.0 Research, 1.0–1.2 Official, > 1.2 Benchmark.
TIER_BOUNDS = (1.0, 1.2)
#: 310P rule: at least this many times the 310 card and the T4.
RULE_310P_VS_310 = 1.2
RULE_310P_VS_T4 = 1.6
DEFAULT_BATCH_SIZES = (1, 4, 8, 16, 32)

# --- Export (SPEC §3) ---------------------------------------------------------------------------------------
#: The opset the port's ATC converts; the new (dynamo) exporter writes opset >= 18, which it does not.
ATC_OPSET = 11


@dataclass(frozen=True)
class AccuracyReference:
    """The accuracy rule in force: published error rate and tolerance, both in percent / percentage points."""

    published_error_pct: float = PUBLISHED_ERROR_PCT
    tolerance_pp: float = TOLERANCE_PP

    def views(self, error_pct: float) -> dict[str, float]:
        """The three readings of "within 1 %" side by side (SPEC §6), so nobody has to guess the unit."""
        ref = self.published_error_pct
        return {
            "error_pct": error_pct,
            "published_error_pct": ref,
            "abs_diff_pp": error_pct - ref,
            "relative_change_pct": (error_pct - ref) / ref * 100.0 if ref else float("nan"),
            "point_accuracy_pct": 100.0 - error_pct,
            "published_point_accuracy_pct": 100.0 - ref,
        }

    def passes(self, error_pct: float) -> bool:
        return abs(error_pct - self.published_error_pct) <= self.tolerance_pp


# --- Performance: appended by the Ascend/performance side (issue 5) -----------------------------------------
#: Names of the placement tiers, lowest first, matching ``TIER_BOUNDS`` (SPEC §7). "Benchmark" is what the port's
#: guide calls "Perfect".
TIER_NAMES = ("Research", "Official", "Benchmark")
#: ``modelzoo_level.txt`` PerfStatus values (SPEC §7). SPEC names the values but not the rule; the gate's reading:
#: PERFECT = every batch size beats the T4 and the tier is Benchmark; OK = every batch size beats the T4 and the
#: tier is Official; POK = the authoritative batch sizes (bs1, bs16) beat the T4 but another one does not;
#: NOK = an authoritative batch size does not beat the T4 (tier Research).
PERF_STATUS_VALUES = ("PERFECT", "OK", "POK", "NOK")
#: The ONNX input the port's tools name in ``--input_shape``/``--shapes`` (SPEC §3), and its per-sample shape
#: (C, D, H, W); a trtexec/ATC command whose shape differs measured another model.
ONNX_INPUT_NAME = "actual_input_1"
ONNX_OUTPUT_NAME = "output1"
ONNX_INPUT_SAMPLE_SHAPE = (1, 64, 80, 80)
#: The OM's arithmetic: ATC's default precision mode is force_fp16 (SPEC §5).
OM_DTYPE = "fp16 (ATC force_fp16)"
#: Run validity (reported next to every figure, not gating): fewest timed inferences worth a figure — trtexec's
#: own minimum (``--iterations`` defaults to 10) — and the largest (p99 - median) / median before a run is called
#: unsteady (a run with stalls this large moves a mean-based fps by several percent).
MIN_TIMED_LOOPS = 10
MAX_P99_SPREAD = 0.10
#: A latency maximum this many times the 99th percentile means a cold first inference (warm-up not excluded).
WARMUP_OUTLIER_FACTOR = 2.0
