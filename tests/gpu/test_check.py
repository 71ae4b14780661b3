"""``vnet-accept gpu-sweep``, ``gpu-check`` and ``backend`` on a machine without a GPU: usage errors, the CPU smoke
paths end to end (tiny network), the streaming pass against the gate's own ``run_inference``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vnet_accept.cli import main
from vnet_accept.gpu.check import synthetic_prepared_dataset, timed_accuracy_pass
from vnet_accept.model.checkpoint import random_state_dict, save_checkpoint
from vnet_accept.results.inference import accumulator_sink, infer_stream, iter_batches
from vnet_accept.runners.base import Runner, TensorSpec

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour where CUDA is absent")


@pytest.fixture(scope="module")
def narrow_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "narrow.pth.tar"
    return save_checkpoint(path, random_state_dict(seed=2, width=4, calibrate=False), layout="port")


@needs_no_gpu
def test_gpu_sweep_without_a_gpu_is_a_usage_error(capsys):
    assert main(["gpu-sweep"]) == 2
    err = capsys.readouterr().err
    assert "gpu-sweep: error: CUDA not available: torch.cuda.is_available() is False" in err
    assert "--device cpu for a smoke run" in err


@pytest.mark.parametrize("argv, message", [
    (["gpu-sweep", "--spatial", "64,80,81"], "expected D,H,W, each a multiple of 16"),
    (["gpu-sweep", "--dtypes", "fp16,fp8"], "invalid fp8"),
    (["gpu-sweep", "--variants", "eager,turbo"], "invalid turbo"),
    (["gpu-sweep", "--batch-sizes", "1,1"], "distinct integers"),
])
def test_bad_arguments_fail_at_startup(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_gpu_sweep_smoke_on_the_cpu_writes_table_and_json(tmp_path, narrow_weights, capsys, one_thread):
    code = main(["gpu-sweep", "--device", "cpu", "--weights", str(narrow_weights), "--spatial", "16,32,32",
                 "--dtypes", "fp32", "--variants", "eager,tuned", "--batch-sizes", "1", "--warmup", "0",
                 "--min-iters", "2", "--min-time", "0", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "this device: no T4 ratio (width 4, 16×32×32" in out
    doc = json.loads((tmp_path / "gpu-sweep.json").read_text())
    assert [(r["variant"], r["batch_size"], r["numerics_passed"]) for r in doc["rows"]] == [
        ("eager", 1, True), ("tuned", 1, True)]
    assert doc["model"]["weights"].startswith(str(narrow_weights))
    assert (tmp_path / "gpu-sweep.txt").read_text().startswith("GPU sweep on ")


@needs_no_gpu
def test_backend_command_states_the_choice(capsys):
    assert main(["backend", "--backend", "ort-cpu"]) == 0
    assert capsys.readouterr().out.strip() == "ort-cpu: requested explicitly"
    assert main(["backend", "--backend", "torch-cuda"]) == 2
    assert "CUDA not available" in capsys.readouterr().err


@needs_no_gpu
def test_gpu_check_without_a_gpu_stops_with_the_reason(tmp_path, capsys):
    assert main(["gpu-check", "--out", str(tmp_path), "--no-tests"]) == 2
    doc = json.loads((tmp_path / "gpu-check.json").read_text())
    assert doc["steps"]["env"]["status"] == "fail"
    assert doc["steps"]["env"]["reason"].startswith("CUDA not available")
    assert json.loads((tmp_path / "env.json").read_text())["unavailable"].startswith("CUDA not available")


def test_gpu_check_smoke_runs_every_step_on_the_cpu(tmp_path, narrow_weights, capsys, one_thread):
    code = main(["gpu-check", "--smoke", "--device", "cpu", "--no-tests", "--weights", str(narrow_weights),
                 "--out", str(tmp_path)])
    log = capsys.readouterr().out
    doc = json.loads((tmp_path / "gpu-check.json").read_text())
    steps = doc["steps"]
    assert list(steps) == ["env", "sweep-fp16", "sweep-dtypes", "accuracy-pass", "cpu-backend"], log
    assert {name: s["status"] for name, s in steps.items()} == {
        "env": "info", "sweep-fp16": "info", "sweep-dtypes": "info", "accuracy-pass": "info",
        "cpu-backend": "skipped"}, log
    assert code == 0
    for name in ("sweep-fp16.json", "sweep-fp16.txt", "sweep-dtypes.json", "accuracy-pass.json", "gpu-check.txt"):
        assert (tmp_path / name).is_file(), name
    accuracy = json.loads((tmp_path / "accuracy-pass.json").read_text())
    assert accuracy["consistent_between_paths"] is True and accuracy["tiles"] == 2
    assert [r["path"] for r in accuracy["runs"]] == ["run_inference (serial, the gate's)",
                                                     "run_inference (overlapped)"]
    fp16_sweep = json.loads((tmp_path / "sweep-fp16.json").read_text())
    assert [r["variant"] for r in fp16_sweep["rows"]] == ["eager", "channels-last", "folded", "tuned"]
    assert all(not t["applies"] for t in fp16_sweep["targets"])  # a CPU is not an H100


class SignRunner(Runner):
    """A fast stand-in network: lung where the input is below zero (the synthetic lungs), inverted in the first
    four slices so that some voxels are wrong (any deterministic function would do)."""

    backend = "sign"

    def activate_impl(self):
        pass

    def input_metadata_impl(self):
        return {"actual_input_1": TensorSpec(np.dtype(np.float32), (None, 1, 64, 80, 80))}

    def infer_impl(self, feed):
        x = feed["actual_input_1"][:, 0].copy()
        x[:, :4] *= -1
        return {"output1": np.stack([x, -x], axis=-1)}


def test_streaming_scores_exactly_like_run_inference(tmp_path):
    """The overlapped pass hands the same outputs to the same accumulator as the gate's serial pass."""
    from vnet_accept.metrics.accuracy import AccuracyAccumulator
    from vnet_accept.metrics.masks import MaskSource

    manifest = synthetic_prepared_dataset(tmp_path, scans=1)
    serial = timed_accuracy_pass(SignRunner(), manifest, tmp_path, 3, pipelined=False)
    overlapped = timed_accuracy_pass(SignRunner(), manifest, tmp_path, 3, pipelined=True)
    assert serial["tiles"] == overlapped["tiles"] == 8
    assert (serial["incorrect"], serial["total"]) == (overlapped["incorrect"], overlapped["total"])
    assert serial["incorrect"] == 8 * 4 * 80 * 80 and serial["total"] == 8 * 409_600
    assert overlapped["batches"] == 3  # 3 + 3 + 2 tiles, cut as run_inference cuts them
    with MaskSource(tmp_path) as masks, SignRunner() as runner:
        sink = accumulator_sink(AccuracyAccumulator(masks, keep_predictions=False))
        entries = list(manifest.entries)
        with pytest.raises(ValueError, match="was already added"):  # a sink error stops the pass
            infer_stream(runner, iter_batches(entries + entries[:1], manifest.read_input, 4), sink, overlap=True)


def test_iter_batches_reads_ahead_in_order():
    seen = []

    def read(key):
        seen.append(key)
        return np.full((2, 2, 2), key, dtype=np.float32)

    batches = list(iter_batches(list(range(7)), read, 3, prefetch=2))
    assert [keys for keys, _ in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches[1][1].shape == (3, 1, 2, 2, 2) and batches[2][1][0, 0, 0, 0, 0] == 6
    assert seen == list(range(7))
    with pytest.raises(ValueError):
        list(iter_batches([1], read, 0))


def test_the_overlapped_loop_counts_tiles_and_batches():
    class Echo:
        def infer(self, feed):
            x = feed["actual_input_1"]
            return {"output1": np.stack([-x[:, 0], x[:, 0]], axis=-1)}

    got = []
    stats = infer_stream(Echo(), [([0, 1], np.ones((2, 1, 2, 2, 2), np.float32)),
                                  ([2], np.zeros((1, 1, 2, 2, 2), np.float32))],
                         lambda keys, outs: got.append((keys, outs.shape)), overlap=True)
    assert got == [([0, 1], (2, 2, 2, 2, 2)), ([2], (1, 2, 2, 2, 2))]
    assert (stats.tiles, stats.batches) == (3, 2) and stats.seconds >= stats.infer_s
