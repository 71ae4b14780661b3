"""Unit tests for vnet_accept.runners.base: input checks, the runner lifecycle, timing and batching.

``FakeRunner`` is a test double for the *interface*: a backend whose output is a known function of its input.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from vnet_accept.errors import UsageError
from vnet_accept.results.inference import run_in_batches
from vnet_accept.runners.base import InputMismatch, Runner, TensorSpec, check_inputs

SPEC = {"actual_input_1": TensorSpec(np.dtype(np.float32), (None, 1, 2, 3, 4))}


def _tiles(n: int) -> np.ndarray:
    """(N, 1, D=2, H=3, W=4) float32, every sample distinct (sample i holds values 100*i + k)."""
    return (np.arange(n)[:, None] * 100 + np.arange(24)[None, :]).reshape(n, 1, 2, 3, 4).astype(np.float32)


def _model(x: np.ndarray) -> np.ndarray:
    """What FakeRunner computes: (N, 1, D, H, W) -> (N, D, H, W, 2), class 0 = -x, class 1 = x."""
    return np.stack([-x[:, 0], x[:, 0]], axis=-1)


class FakeRunner(Runner):
    backend = "fake"

    def __init__(self, metadata_delay_s: float = 0.0, infer_delay_s: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.calls: list[str] = []
        self.batch_sizes: list[int] = []
        self.metadata_delay_s, self.infer_delay_s = metadata_delay_s, infer_delay_s

    def activate_impl(self) -> None:
        self.calls.append("activate")

    def deactivate_impl(self) -> None:
        self.calls.append("deactivate")

    def input_metadata_impl(self) -> dict[str, TensorSpec]:
        time.sleep(self.metadata_delay_s)
        return SPEC

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.infer_delay_s)
        x = feed["actual_input_1"]
        self.batch_sizes.append(len(x))
        return {"output1": _model(x), "aux": x.sum(axis=(1, 2, 3, 4))}


# -- check_inputs --------------------------------------------------------------------------------------------------

def test_check_inputs_accepts_a_matching_feed_with_any_size_on_a_dynamic_axis():
    for n in (1, 7):
        check_inputs({"actual_input_1": _tiles(n)}, SPEC)


def test_check_inputs_names_the_tensor_the_received_and_the_expected_dtype():
    with pytest.raises(InputMismatch) as excinfo:
        check_inputs({"actual_input_1": _tiles(1).astype(np.float64)}, SPEC)
    message = str(excinfo.value)
    assert "actual_input_1" in message
    assert "Received dtype float64" in message and "Expected float32" in message


@pytest.mark.parametrize("shape", [(1, 2, 2, 3, 4), (1, 1, 3, 2, 4), (1, 2, 3, 4), (1, 1, 2, 3, 4, 1)])
def test_check_inputs_names_the_tensor_the_received_and_the_expected_shape(shape):
    with pytest.raises(InputMismatch) as excinfo:
        check_inputs({"actual_input_1": np.zeros(shape, np.float32)}, SPEC)
    message = str(excinfo.value)
    assert "Input tensor: actual_input_1" in message
    assert f"Received shape {shape}" in message
    assert "Expected ('?', 1, 2, 3, 4)" in message


def test_check_inputs_reports_a_missing_input_and_the_expected_names():
    with pytest.raises(InputMismatch) as excinfo:
        check_inputs({}, SPEC)
    message = str(excinfo.value)
    assert "missing ['actual_input_1']" in message
    assert "takes ['actual_input_1']" in message


def test_check_inputs_reports_an_unexpected_input_name():
    with pytest.raises(InputMismatch) as excinfo:
        check_inputs({"input": _tiles(1)}, SPEC)
    message = str(excinfo.value)
    assert "missing ['actual_input_1']" in message and "unexpected ['input']" in message


def test_check_inputs_reports_an_extra_input_even_when_the_expected_one_is_present():
    with pytest.raises(InputMismatch, match=r"unexpected \['mask'\]"):
        check_inputs({"actual_input_1": _tiles(1), "mask": _tiles(1)}, SPEC)


def test_check_inputs_rejects_a_non_array_feed():
    with pytest.raises(InputMismatch, match="actual_input_1.*list"):
        check_inputs({"actual_input_1": _tiles(1).tolist()}, SPEC)


def test_input_mismatch_is_a_usage_error():
    assert issubclass(InputMismatch, UsageError)


# -- lifecycle -----------------------------------------------------------------------------------------------------

def test_infer_before_activate_raises():
    runner = FakeRunner()
    with pytest.raises(RuntimeError, match="activate"):
        runner.infer({"actual_input_1": _tiles(1)})
    with pytest.raises(RuntimeError, match="activate"):
        runner.input_metadata()
    assert runner.calls == [] and runner.inference_times_s == []


def test_double_activate_warns_and_does_not_activate_the_backend_twice():
    runner = FakeRunner(name="ort")
    assert runner.activate() is runner
    with pytest.warns(UserWarning, match="ort: activate.*already active"):
        assert runner.activate() is runner
    assert runner.calls == ["activate"]
    runner.deactivate()


def test_double_deactivate_warns_and_does_not_deactivate_the_backend_twice():
    runner = FakeRunner().activate()
    runner.deactivate()
    with pytest.warns(UserWarning, match="inactive"):
        runner.deactivate()
    assert runner.calls == ["activate", "deactivate"]
    assert not runner.is_active


def test_context_manager_activates_and_deactivates():
    runner = FakeRunner()
    with runner as active:
        assert active is runner and runner.is_active
        assert runner.calls == ["activate"]
    assert not runner.is_active
    assert runner.calls == ["activate", "deactivate"]


def test_context_manager_deactivates_when_the_body_raises():
    runner = FakeRunner()
    with pytest.raises(ZeroDivisionError):
        with runner:
            1 / 0  # noqa: B018
    assert not runner.is_active and runner.calls[-1] == "deactivate"


def test_a_failing_deactivate_impl_still_marks_the_runner_inactive():
    class Broken(FakeRunner):
        def deactivate_impl(self) -> None:
            raise OSError("device busy")

    runner = Broken().activate()
    with pytest.raises(OSError, match="device busy"):
        runner.deactivate()
    assert not runner.is_active


def test_a_runner_garbage_collected_while_active_warns():
    runner = FakeRunner(name="leaky").activate()
    with pytest.warns(UserWarning, match="leaky was never deactivated"):
        del runner  # the last reference: CPython finalises it here (a gc.collect() costs ~0.3 s with torch loaded)


def test_describe_states_name_bn_mode_dtype_and_device():
    assert FakeRunner().describe() == "fake [bn_mode=as compiled, fp32, cpu]"
    assert FakeRunner(name="torch-cuda", bn_mode="batch", dtype="fp16", device="cuda:0").describe() == \
        "torch-cuda [bn_mode=batch, fp16, cuda:0]"


# -- inference and timing ------------------------------------------------------------------------------------------

def test_infer_returns_an_ordered_dict_of_the_backend_outputs():
    with FakeRunner() as runner:
        out = runner.infer({"actual_input_1": _tiles(2)})
    assert list(out) == ["output1", "aux"]
    np.testing.assert_array_equal(out["output1"], _model(_tiles(2)))


def test_infer_validates_the_feed_against_the_metadata_unless_told_not_to():
    bad = {"actual_input_1": _tiles(1).astype(np.float64)}
    with FakeRunner() as runner:
        with pytest.raises(InputMismatch):
            runner.infer(bad)
        assert runner.batch_sizes == [] and runner.inference_times_s == []  # the backend never ran
        runner.infer(bad, check=False)
        assert runner.batch_sizes == [1]


def test_timing_list_grows_by_one_per_call():
    with FakeRunner() as runner:
        assert runner.inference_times_s == []
        for expected_len in (1, 2, 3):
            runner.infer({"actual_input_1": _tiles(1)})
            assert len(runner.inference_times_s) == expected_len
        assert all(t >= 0 for t in runner.inference_times_s)


def test_only_the_backend_call_is_timed_not_the_input_check():
    with FakeRunner(metadata_delay_s=0.3, infer_delay_s=0.02) as runner:
        runner.infer({"actual_input_1": _tiles(1)})
    assert 0.02 <= runner.inference_times_s[-1] < 0.3


# -- batching ------------------------------------------------------------------------------------------------------

def test_run_in_batches_splits_without_padding_and_concatenates_in_order():
    x = _tiles(5)
    with FakeRunner() as runner:
        out = run_in_batches(runner, x, batch_size=2)
    assert runner.batch_sizes == [2, 2, 1]
    assert out.shape == (5, 2, 3, 4, 2)
    np.testing.assert_array_equal(out, _model(x))


@pytest.mark.parametrize(("n", "batch_size", "sizes"), [(4, 4, [4]), (3, 8, [3]), (3, 1, [1, 1, 1])])
def test_run_in_batches_batch_sizes(n, batch_size, sizes):
    with FakeRunner() as runner:
        out = run_in_batches(runner, _tiles(n), batch_size)
    assert runner.batch_sizes == sizes
    np.testing.assert_array_equal(out, _model(_tiles(n)))


def test_run_in_batches_feeds_contiguous_arrays():
    x = _tiles(8)[::2]  # a strided view: every batch slice of it is non-contiguous too
    assert not x[0:2].flags["C_CONTIGUOUS"]
    seen = []

    class Recorder(FakeRunner):
        def infer_impl(self, feed):
            seen.append(feed["actual_input_1"].flags["C_CONTIGUOUS"])
            return super().infer_impl(feed)

    with Recorder() as runner:
        out = run_in_batches(runner, x, 2)
    assert seen == [True, True]
    np.testing.assert_array_equal(out, _model(x))


@pytest.mark.parametrize("batch_size", [0, -1])
def test_run_in_batches_rejects_a_batch_size_below_one(batch_size):
    with FakeRunner() as runner:
        with pytest.raises(ValueError, match=f"got {batch_size}"):
            run_in_batches(runner, _tiles(2), batch_size)


def test_run_in_batches_uses_the_named_input_and_output():
    class Renamed(FakeRunner):
        def input_metadata_impl(self):
            return {"x": SPEC["actual_input_1"]}

        def infer_impl(self, feed):
            return {"y": _model(feed["x"])}

    with Renamed() as runner:
        out = run_in_batches(runner, _tiles(3), 2, input_name="x", output_name="y")
    np.testing.assert_array_equal(out, _model(_tiles(3)))
