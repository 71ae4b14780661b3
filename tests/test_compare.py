"""Unit tests for vnet_accept.compare: the one comparison behind every parity and invariance check."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vnet_accept.compare import CompareResult, compare_outputs, label_flips
from vnet_accept.tolerances import Tolerance

NO_LIMITS = Tolerance(max_abs=None, max_flip_fraction=None)


def _logits(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """(N, D, H, W, 2)-like float32 values on a 1/64 grid, so sums and differences below are exact."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-256, 256, size=shape) / 64).astype(np.float32)


# -- identical and perturbed arrays -------------------------------------------------------------------------------

def test_identical_arrays_pass_with_zero_error_and_perfect_similarity():
    a = _logits((2, 3, 4, 4, 2))
    result = compare_outputs(a, a.copy(), Tolerance(max_abs=0.0, max_flip_fraction=0.0, min_cosine=1.0, max_red=0.0,
                                                    max_mean_abs=0.0))
    assert result.passed and bool(result)
    assert result.failures == ()
    assert (result.max_abs, result.mean_abs, result.flips, result.flip_fraction, result.red) == (0.0, 0.0, 0, 0.0, 0.0)
    assert result.cosine == pytest.approx(1.0, abs=1e-15)
    assert result.shape == (2, 3, 4, 4, 2)
    assert result.voxels == 2 * 3 * 4 * 4
    assert (result.nonfinite_obtained, result.nonfinite_expected) == (0, 0)


def test_known_perturbation_gives_exact_max_and_mean_abs_and_the_worst_voxel():
    expected = _logits((1, 2, 2, 2, 2), seed=1)
    obtained = expected.copy()
    obtained[0, 1, 0, 1, 1] += 0.25
    obtained[0, 0, 1, 0, 0] -= 0.125
    result = compare_outputs(obtained, expected, NO_LIMITS)
    assert result.max_abs == 0.25
    assert result.mean_abs == pytest.approx((0.25 + 0.125) / expected.size, rel=1e-12)
    assert result.worst_index == (0, 1, 0, 1, 1)
    assert result.worst_obtained == float(expected[0, 1, 0, 1, 1]) + 0.25
    assert result.worst_expected == float(expected[0, 1, 0, 1, 1])


def test_worst_index_is_reported_for_a_negative_difference_too():
    expected = np.zeros((3, 4, 2), np.float32)
    obtained = expected.copy()
    obtained[2, 1, 0] = -0.5
    obtained[0, 0, 1] = 0.25
    result = compare_outputs(obtained, expected, NO_LIMITS)
    assert result.worst_index == (2, 1, 0)
    assert (result.worst_obtained, result.worst_expected) == (-0.5, 0.0)


def test_limits_are_inclusive_and_a_larger_difference_fails_with_both_numbers_in_the_message():
    expected = np.zeros((1, 4, 2))
    obtained = expected.copy()
    obtained[0, 0, 0] = 1e-4
    assert compare_outputs(obtained, expected, Tolerance(max_abs=1e-4, max_flip_fraction=None)).passed
    obtained[0, 0, 0] = 3e-4
    result = compare_outputs(obtained, expected, Tolerance(max_abs=1e-4, max_flip_fraction=None))
    assert not result.passed and not bool(result)
    assert len(result.failures) == 1
    assert "0.0003" in result.failures[0] and "0.0001" in result.failures[0]


def test_mean_abs_limit_is_checked_separately_from_max_abs():
    expected = np.zeros((1, 4, 2))
    obtained = np.full_like(expected, 0.01)
    result = compare_outputs(obtained, expected, Tolerance(max_abs=1.0, max_flip_fraction=None, max_mean_abs=0.001))
    assert not result.passed
    assert len(result.failures) == 1 and result.failures[0].startswith("mean|Δ|")


def test_default_tolerance_is_the_fp32_parity_limit():
    tol = Tolerance()
    assert (tol.max_abs, tol.max_flip_fraction) == (1e-4, 1e-5)
    assert (tol.min_cosine, tol.max_red, tol.max_mean_abs) == (None, None, None)


# -- label flips -------------------------------------------------------------------------------------------------

def test_label_flips_are_counted_over_the_last_axis():
    # 2 voxels x 3 classes: arg-max over the last axis flips only in voxel 1; over axis 0 it would differ in every
    # column, so a wrong axis gives a different count and shape.
    expected = np.array([[[0.0, 5.0, 1.0], [3.0, 0.0, 1.0]]])
    obtained = np.array([[[0.0, 4.0, 1.0], [0.0, 0.0, 2.0]]])
    flips = label_flips(obtained, expected)
    assert flips.shape == (1, 2)
    assert flips.tolist() == [[False, True]]
    result = compare_outputs(obtained, expected, NO_LIMITS)
    assert (result.flips, result.voxels) == (1, 2)
    assert result.flip_fraction == 0.5


def test_ties_go_to_class_zero_on_both_sides():
    tie = [0.5, 0.5]
    obtained = np.array([[tie, tie, tie, [0.2, 0.1]]])
    expected = np.array([[[0.1, 0.9], [0.9, 0.1], tie, tie]])
    # voxel 0: 0 vs 1 -> flip; voxel 1: 0 vs 0; voxel 2: tie vs tie -> 0 vs 0; voxel 3: 0 vs tie (0) -> no flip
    assert label_flips(obtained, expected).tolist() == [[True, False, False, False]]


def test_flip_fraction_limit_fails_when_exceeded():
    expected = np.zeros((1, 10, 2))
    expected[..., 1] = 1.0  # every voxel class 1
    obtained = expected.copy()
    obtained[0, :2] = [1.0, 0.0]  # 2 of 10 voxels flip to class 0
    assert compare_outputs(obtained, expected, Tolerance(max_abs=None, max_flip_fraction=0.2)).passed
    result = compare_outputs(obtained, expected, Tolerance(max_abs=None, max_flip_fraction=0.1))
    assert not result.passed
    assert result.flips == 2
    assert "flip fraction 0.2 > 0.1" in result.failures[0]


# -- non-finite values ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("side", ["obtained", "expected"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_on_either_side_always_fail_and_are_counted(side, bad):
    good = _logits((1, 2, 2, 2, 2))
    broken = good.copy()
    broken[0, 1, 1, 0, 1] = bad
    broken[0, 0, 0, 0, 0] = bad
    obtained, expected = (broken, good) if side == "obtained" else (good, broken)
    result = compare_outputs(obtained, expected, NO_LIMITS)  # no numeric limit at all: still a failure
    assert not result.passed
    counts = {"obtained": result.nonfinite_obtained, "expected": result.nonfinite_expected}
    assert counts[side] == 2
    assert counts["expected" if side == "obtained" else "obtained"] == 0
    assert result.max_abs == math.inf  # a NaN difference counts as the worst possible, never as 0
    assert result.worst_index in {(0, 1, 1, 0, 1), (0, 0, 0, 0, 0)}
    assert any("NaN/Inf" in f for f in result.failures)
    assert "non-finite values" in result.report()


def test_equal_infinities_on_both_sides_still_fail_without_numpy_runtime_warnings():
    a = np.array([[np.inf, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # inf - inf must be handled, not leak a warning
        result = compare_outputs(a, a.copy(), NO_LIMITS)
    assert not result.passed
    assert (result.nonfinite_obtained, result.nonfinite_expected) == (1, 1)


def test_nan_is_not_hidden_by_a_generous_max_abs():
    expected = np.zeros((1, 2, 2))
    obtained = expected.copy()
    obtained[0, 0, 0] = np.nan
    result = compare_outputs(obtained, expected, Tolerance(max_abs=1e30, max_flip_fraction=1.0))
    assert not result.passed
    assert result.max_abs == math.inf


# -- shapes --------------------------------------------------------------------------------------------------------

def test_shape_mismatch_raises_value_error_naming_both_shapes():
    with pytest.raises(ValueError) as excinfo:
        compare_outputs(np.zeros((2, 4, 4, 2)), np.zeros((2, 4, 2, 4)), name="ort vs torch")
    message = str(excinfo.value)
    assert "(2, 4, 4, 2)" in message and "(2, 4, 2, 4)" in message
    assert "ort vs torch" in message


def test_a_transposed_layout_with_a_different_shape_is_not_silently_broadcast():
    with pytest.raises(ValueError, match="shape mismatch"):
        compare_outputs(np.zeros((1, 2)), np.zeros((3, 1, 2)))


# -- cosine and RED ------------------------------------------------------------------------------------------------

def test_cosine_and_red_match_the_numpy_formulas():
    rng = np.random.default_rng(7)
    expected = rng.normal(size=(2, 3, 4, 5, 2))
    obtained = expected + rng.normal(scale=0.3, size=expected.shape)
    obtained32, expected32 = obtained.astype(np.float32), expected.astype(np.float32)
    result = compare_outputs(obtained32, expected32, NO_LIMITS)
    a, b = obtained32.astype(np.float64).ravel(), expected32.astype(np.float64).ravel()
    assert result.cosine == pytest.approx(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)), rel=1e-12)
    assert result.red == pytest.approx(np.sqrt(np.sum((a - b) ** 2)) / np.sqrt(np.sum(b * b)), rel=1e-12)
    assert 0.9 < result.cosine < 1.0  # a real perturbation, not a degenerate case


def test_red_is_relative_to_the_expected_side():
    expected = np.array([[3.0, 4.0]])  # ||b|| = 5
    obtained = np.array([[3.0, 5.0]])  # ||a - b|| = 1
    result = compare_outputs(obtained, expected, NO_LIMITS)
    assert result.red == pytest.approx(1 / 5, rel=1e-15)
    swapped = compare_outputs(expected, obtained, NO_LIMITS)
    assert swapped.red == pytest.approx(1 / math.sqrt(34), rel=1e-15)


def test_opposite_outputs_have_cosine_minus_one_and_fail_a_cosine_limit():
    expected = _logits((1, 3, 2), seed=3)
    result = compare_outputs(-expected, expected, Tolerance(max_abs=None, max_flip_fraction=None, min_cosine=0.99))
    assert result.cosine == pytest.approx(-1.0, abs=1e-12)
    assert result.red == pytest.approx(2.0, rel=1e-12)
    assert len(result.failures) == 1 and result.failures[0].startswith("cosine -1.000000 < 0.99")


def test_red_limit_fails_when_exceeded():
    expected = np.array([[3.0, 4.0]])
    obtained = np.array([[3.0, 5.0]])
    result = compare_outputs(obtained, expected, Tolerance(max_abs=None, max_flip_fraction=None, max_red=0.05))
    assert not result.passed
    assert result.failures == ("RED 0.2 > 0.05",)


def test_all_zero_arrays_have_cosine_one_and_red_zero():
    z = np.zeros((1, 4, 2))
    result = compare_outputs(z, z.copy(), Tolerance(min_cosine=1.0, max_red=0.0))
    assert (result.cosine, result.red) == (1.0, 0.0)
    assert result.passed


def test_zero_expected_with_nonzero_obtained_gives_infinite_red_and_zero_cosine():
    result = compare_outputs(np.ones((1, 2, 2)), np.zeros((1, 2, 2)), NO_LIMITS)
    assert result.red == math.inf
    assert result.cosine == 0.0


# -- precision -----------------------------------------------------------------------------------------------------

def test_fp16_inputs_are_cast_up_before_subtraction():
    # In fp16, 60000 - (-60000) overflows to inf and 2048 - (-0.5) rounds to 2048; in float64 both are exact.
    obtained = np.array([[60000.0, 2048.0]], dtype=np.float16)
    expected = np.array([[-60000.0, -0.5]], dtype=np.float16)
    result = compare_outputs(obtained, expected, NO_LIMITS)
    assert result.max_abs == 120000.0
    assert result.mean_abs == (120000.0 + 2048.5) / 2
    assert result.passed  # both sides are finite: no spurious NaN/Inf failure from an fp16 overflow
    assert (result.nonfinite_obtained, result.nonfinite_expected) == (0, 0)


def test_small_fp16_difference_is_measured_exactly():
    obtained = np.array([[2048.0, 0.0]], dtype=np.float16)
    expected = np.array([[-0.5, 0.0]], dtype=np.float16)
    assert compare_outputs(obtained, expected, NO_LIMITS).max_abs == 2048.5


def test_fp16_obtained_against_fp32_expected_compares_in_float64():
    expected = np.array([[1.0001, 0.0]], dtype=np.float32)
    obtained = expected.astype(np.float16)  # 1.0001 rounds to 1.0 in fp16
    result = compare_outputs(obtained, expected, NO_LIMITS)
    assert result.max_abs == pytest.approx(float(expected[0, 0]) - 1.0, rel=1e-12)
    assert result.max_abs > 0


# -- required tolerance (property) ---------------------------------------------------------------------------------

_values = st.integers(-4096, 4096).map(lambda i: i / 256)  # realistic log-probability magnitudes, no subnormals
_shapes = hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4).map(lambda s: (*s[:-1], 2))


@st.composite
def _pairs(draw):
    shape = draw(_shapes)
    a = draw(hnp.arrays(np.float64, shape, elements=_values))
    b = draw(hnp.arrays(np.float64, shape, elements=_values))
    return a, b


@settings(max_examples=60, deadline=None)
@given(_pairs())
def test_required_tolerance_is_the_loosest_passing_tolerance(pair):
    obtained, expected = pair
    measured = compare_outputs(obtained, expected, NO_LIMITS)
    required = measured.required_tolerance()
    assert set(required) == {"max_abs", "max_mean_abs", "max_flip_fraction", "min_cosine", "max_red"}
    assert compare_outputs(obtained, expected, Tolerance(**required)).passed
    if measured.max_abs > 0:
        tighter = Tolerance(**{**required, "max_abs": float(np.nextafter(measured.max_abs, 0.0))})
        result = compare_outputs(obtained, expected, tighter)
        assert not result.passed
        assert len(result.failures) == 1 and result.failures[0].startswith("max|Δ|")
    if measured.flips:
        tighter = Tolerance(**{**required, "max_flip_fraction": float(np.nextafter(measured.flip_fraction, 0.0))})
        assert not compare_outputs(obtained, expected, tighter).passed


# -- text ----------------------------------------------------------------------------------------------------------

def _failing_result() -> CompareResult:
    expected = np.zeros((1, 4, 2))
    expected[..., 1] = 1.0
    obtained = expected.copy()
    obtained[0, 3, 0] = 1.25  # a flip at voxel 3, |Δ| = 1.25
    return compare_outputs(obtained, expected, Tolerance(max_abs=0.1, max_flip_fraction=0.0), name="ort vs torch")


def test_summary_is_one_line_starting_with_the_verdict_and_holding_the_key_numbers():
    failed = _failing_result()
    summary = failed.summary()
    assert "\n" not in summary
    assert summary.startswith("FAILED ort vs torch:")
    assert "max|Δ|=1.25" in summary
    assert "flips 1/4" in summary
    assert "violates" in summary and "1.25 > 0.1" in summary
    z = np.zeros((1, 2, 2))
    passed = compare_outputs(z, z, name="same").summary()
    assert passed.startswith("PASSED same:") and "violates" not in passed


def test_report_states_the_tolerance_in_force_and_the_minimum_required_tolerance():
    report = _failing_result().report()
    lines = report.splitlines()
    assert lines[0].startswith("FAILED")
    assert any(ln.strip() == "tolerance in force: max|Δ| <= 0.1, no label flip" for ln in lines)
    required = next(ln for ln in lines if "minimum required tolerance" in ln)
    assert "max|Δ| <= 1.25" in required
    assert "label flips <= 0.25" in required
    assert "(0, 3, 0)" in report and "obtained 1.25, expected 0" in report


def test_to_dict_is_json_serialisable_and_carries_verdict_and_required_tolerance():
    d = _failing_result().to_dict()
    round_trip = json.loads(json.dumps(d))
    assert round_trip["passed"] is False
    assert round_trip["required_tolerance"]["max_abs"] == 1.25
    assert round_trip["tolerance"] == {"max_abs": 0.1, "max_flip_fraction": 0.0, "min_cosine": None,
                                       "max_red": None, "max_mean_abs": None}
    assert round_trip["worst_index"] == [0, 3, 0]


def test_tolerance_describe_lists_only_enabled_limits():
    assert Tolerance(max_abs=None, max_flip_fraction=None).describe() == "no limits"
    text = Tolerance(max_abs=0.5, max_flip_fraction=None, min_cosine=0.99, max_red=0.05).describe()
    assert text == "max|Δ| <= 0.5, cosine >= 0.99, RED <= 0.05"
