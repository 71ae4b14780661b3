"""Choosing the reference backend (vnet_accept.runners.backend_choice): GPU first, else the CPU backend a benchmark
on this machine finds faster, cached per machine and always stated with its measurement."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from vnet_accept.cache import ArtifactCache
from vnet_accept.errors import UsageError
from vnet_accept.export.onnx_export import ExportOptions, export_onnx_bytes
from vnet_accept.model.vnet import VNet
from vnet_accept.runners import backend_choice
from vnet_accept.runners.backend_choice import (
    BENCH_SPATIAL,
    CHOICE_FILE,
    BackendChoice,
    benchmark_cpu_backends,
    choose_cpu_backend,
    decide,
    machine_key,
    onnx_spatial,
    select_backend,
)


def _identity_onnx(dims) -> bytes:
    """A one-node ONNX whose input ``actual_input_1`` has ``dims`` (ints fixed, strings dynamic)."""
    x = helper.make_tensor_value_info("actual_input_1", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("output1", TensorProto.FLOAT, dims)
    graph = helper.make_graph([helper.make_node("Identity", ["actual_input_1"], ["output1"])], "g", [x], [y])
    return helper.make_model(graph).SerializeToString()


DYNAMIC = _identity_onnx(["N", 1, "D", "H", "W"])
FIXED = _identity_onnx(["N", 1, 64, 80, 80])


class FakeModel:
    width = 16


class Recorder:
    """A benchmark stand-in: returns fixed samples and records what it was asked."""

    def __init__(self, samples):
        self.samples, self.calls = samples, []

    def __call__(self, model, source, bn_mode, spatial):
        self.calls.append((model, source, bn_mode, spatial))
        return self.samples


def test_decide_takes_the_fastest_best_time_and_breaks_ties_for_pytorch():
    assert decide({"ort-cpu": [5.6, 5.5], "torch-cpu": [4.4, 4.6]}) == ("torch-cpu", {"ort-cpu": 5.5,
                                                                                      "torch-cpu": 4.4})
    assert decide({"ort-cpu": [1.0], "torch-cpu": [1.2]})[0] == "ort-cpu"
    assert decide({"ort-cpu": [1.0], "torch-cpu": [1.0]})[0] == "torch-cpu"
    with pytest.raises(ValueError):
        decide({"ort-cpu": []})


def test_onnx_spatial_reads_fixed_and_dynamic_inputs():
    assert onnx_spatial(DYNAMIC) is None
    assert onnx_spatial(FIXED) == (64, 80, 80)


class FakeRunner:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def activate(self):
        self.log.append(("activate", self.name))

    def deactivate(self):
        self.log.append(("deactivate", self.name))

    def infer(self, feed):
        self.log.append((self.name, feed["actual_input_1"].shape[2:]))


def test_the_benchmark_warms_up_alternates_and_respects_its_budget():
    log = []
    runners = {"ort-cpu": FakeRunner("ort-cpu", log), "torch-cpu": FakeRunner("torch-cpu", log)}
    ticks = iter(np.arange(0, 100, 1.5))  # every timed forward takes 1.5 "s"
    samples = benchmark_cpu_backends(None, b"", runners=runners, clock=lambda: next(ticks), budget_s=4.0)
    assert samples == {"ort-cpu": [1.5, 1.5], "torch-cpu": [1.5, 1.5]}  # 3 s after round 1: a second round
    forwards = [entry for entry in log if entry[0] in runners]
    assert forwards[:2] == [("ort-cpu", (16, 16, 16)), ("torch-cpu", (16, 16, 16))]  # the tiny warm-up
    assert [name for name, _ in forwards[2:]] == ["ort-cpu", "torch-cpu", "ort-cpu", "torch-cpu"]
    assert all(shape == BENCH_SPATIAL for _, shape in forwards[2:])
    assert log[-2:] == [("deactivate", "ort-cpu"), ("deactivate", "torch-cpu")]
    log.clear()
    ticks = iter(np.arange(0, 100, 3.0))
    one_round = benchmark_cpu_backends(None, b"", runners=runners, clock=lambda: next(ticks), budget_s=4.0)
    assert one_round == {"ort-cpu": [3.0], "torch-cpu": [3.0]}  # 6 s spent: no second round


def test_the_real_runners_can_be_timed_on_a_narrow_network():
    torch.manual_seed(0)
    model = VNet(width=4, bn_mode="running").eval()
    source = export_onnx_bytes(model, ExportOptions(bn_mode="running", spatial=None))
    samples = benchmark_cpu_backends(model, source, spatial=(16, 32, 32), rounds=1)
    assert set(samples) == {"ort-cpu", "torch-cpu"} and all(len(v) == 1 and v[0] > 0 for v in samples.values())


def test_the_decision_is_measured_once_per_machine_and_then_read_from_the_cache(tmp_path):
    cache = ArtifactCache(tmp_path)
    bench = Recorder({"ort-cpu": [0.9, 0.8], "torch-cpu": [0.7, 0.75]})
    built = []

    def onnx_source():
        built.append(1)
        return DYNAMIC

    first = choose_cpu_backend(FakeModel(), onnx_source, cache=cache, benchmark=bench)
    assert (first.backend, first.cached, first.times_s) == ("torch-cpu", False, {"ort-cpu": 0.8, "torch-cpu": 0.7})
    assert bench.calls[0][3] == BENCH_SPATIAL and first.machine == machine_key()
    second = choose_cpu_backend(FakeModel(), onnx_source, cache=cache, benchmark=bench)
    assert second.cached and second.backend == "torch-cpu" and second.times_s == first.times_s
    assert len(bench.calls) == 1 and built == [1]  # the export callable is not called for a cached decision
    text = second.describe()
    assert text.startswith("torch-cpu: faster on this machine's CPU [torch-cpu 0.7 s vs ort-cpu 0.8 s per "
                           "1×1×16×80×80 forward, width 16, bn_mode=running")
    assert "cached" in text
    bench.samples = {"ort-cpu": [0.5], "torch-cpu": [0.7]}
    third = choose_cpu_backend(FakeModel(), onnx_source, cache=cache, benchmark=bench, refresh=True)
    assert (third.backend, third.cached) == ("ort-cpu", False)
    assert choose_cpu_backend(FakeModel(), onnx_source, cache=cache, benchmark=bench).backend == "ort-cpu"


def test_a_fixed_size_onnx_is_timed_at_its_own_size():
    bench = Recorder({"ort-cpu": [5.6], "torch-cpu": [4.4]})
    choice = choose_cpu_backend(FakeModel(), FIXED, benchmark=bench)
    assert bench.calls[0][3] == (64, 80, 80) and choice.spatial == (64, 80, 80)


def test_a_corrupt_cached_decision_is_measured_again(tmp_path):
    cache = ArtifactCache(tmp_path)
    bench = Recorder({"ort-cpu": [0.9], "torch-cpu": [0.7]})
    choose_cpu_backend(FakeModel(), DYNAMIC, cache=cache, benchmark=bench)
    (entry,) = [p for p in (tmp_path / "backend-choice").iterdir() if p.is_dir()]
    (entry / CHOICE_FILE).write_text("{not json")
    # The cache checks the entry against its checksums (issue 12): the damaged decision is never read, the entry
    # is rebuilt (measured again) with a warning naming it.
    with pytest.warns(UserWarning, match=f"{entry.name}.*{CHOICE_FILE} differs from its sha256"):
        again = choose_cpu_backend(FakeModel(), DYNAMIC, cache=cache, benchmark=bench)
    assert not again.cached
    assert len(bench.calls) == 2


def test_select_backend_prefers_the_gpu_and_respects_what_is_at_hand(monkeypatch):
    gpu, no_gpu = (lambda: True), (lambda: False)
    assert select_backend("auto", model=FakeModel(), cuda_available=gpu).backend == "torch-cuda"
    assert select_backend("auto", onnx=DYNAMIC, cuda_available=gpu).backend == "ort-cpu"  # no model: no PyTorch
    assert select_backend("auto", onnx=DYNAMIC, cuda_available=no_gpu).reason.startswith("only an ONNX file")
    bench = Recorder({"ort-cpu": [2.0], "torch-cpu": [1.0]})
    monkeypatch.setattr(backend_choice, "benchmark_cpu_backends", bench)
    choice = select_backend("auto", model=FakeModel(), onnx=DYNAMIC, cuda_available=no_gpu)
    assert choice.backend == "torch-cpu" and len(bench.calls) == 1


def test_explicit_backends_are_checked_against_the_registry_and_the_machine():
    assert select_backend("ort-cpu", cuda_available=lambda: False) == BackendChoice("ort-cpu", "requested explicitly")
    assert select_backend("torch-cuda-fp16", cuda_available=lambda: True).backend == "torch-cuda-fp16"
    with pytest.raises(UsageError, match="--backend torch-cuda: CUDA not available"):
        select_backend("torch-cuda", cuda_available=lambda: False)
    with pytest.raises(UsageError, match="did you mean ort-cpu"):
        select_backend("ort-cup")


def test_a_choice_survives_json():
    choice = BackendChoice("torch-cpu", "faster", {"torch-cpu": 1.0}, {"torch-cpu": [1.0]}, (16, 80, 80), 16,
                           "running", {"cpu": "x"}, "2026-01-01T00:00:00")
    assert BackendChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice


def test_the_identity_onnx_is_valid():
    onnx.checker.check_model(onnx.load_from_string(FIXED))


def test_a_decision_measured_under_load_says_so():
    busy = BackendChoice("ort-cpu", "faster on this machine's CPU", {"ort-cpu": 1.1, "torch-cpu": 1.8}, {},
                         (16, 80, 80), 16, "running", {"cpu": "AMD EPYC", "logical_cpus": 2, "torch_threads": 2},
                         "2026-01-01T00:00:00", load_average=3.0)
    assert busy.describe().endswith("(measured under load 3.0 on 2 CPUs: rerun `vnet-accept backend --cpu "
                                    "--refresh` on a quiet machine)")
    quiet = BackendChoice(**{**busy.to_dict(), "spatial": (16, 80, 80), "load_average": 0.2})
    assert "under load" not in quiet.describe()
