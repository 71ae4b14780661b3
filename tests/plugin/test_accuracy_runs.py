"""AccuracyRuns: ``--backend auto`` decided from the first scan's tiles, run once through both CPU backends - the
runs the batch-invariance and backend-agreement checks compare - never from a benchmark of its own."""

from __future__ import annotations

from types import SimpleNamespace

from vnet_accept.plugin.accuracy_fixtures import AccuracyRuns


class Dataset:
    manifest = SimpleNamespace(entries=[])

    def check_entries(self):
        return [SimpleNamespace(stem=str(i)) for i in range(4)]


def test_auto_is_decided_once_from_the_runs_the_checks_need(monkeypatch):
    ran: list[tuple] = []
    seconds = {"torch-cpu": 8.0, "ort-cpu": 6.0}

    def in_memory(self, backend, batch_size, entries):
        ran.append((backend, batch_size, len(entries)))
        return SimpleNamespace(inference=SimpleNamespace(backend_s=seconds[backend]))

    monkeypatch.setattr(AccuracyRuns, "in_memory", in_memory)
    decisions: list[dict] = []

    def resolve(runs: AccuracyRuns) -> str:
        times = runs.time_cpu_backends(("torch-cpu", "ort-cpu"))
        decisions.append(times)
        return min(times, key=lambda name: times[name][0])

    runs = AccuracyRuns(Dataset(), resolve, 16, "running", make_runner=None, workdir=None, reference=None)
    assert runs.backend == "ort-cpu" and runs.other_backend == "torch-cpu"
    assert runs.backend == "ort-cpu" and len(decisions) == 1  # decided once
    assert decisions[0] == {"torch-cpu": [2.0], "ort-cpu": [1.5]}  # seconds per tile
    assert ran == [("torch-cpu", 1, 4), ("ort-cpu", 1, 4)]  # the check tiles at bs1: what the checks compare
    assert AccuracyRuns(Dataset(), "torch-cpu", 16, "running", None, None, None).backend == "torch-cpu"


def test_select_backend_takes_the_gates_timing_instead_of_its_benchmark(tmp_path):
    from vnet_accept.cache import ArtifactCache
    from vnet_accept.runners.backend_choice import select_backend

    calls: list[int] = []

    def timing(*_args, **_kwargs):
        calls.append(1)
        return {"torch-cpu": [1.6], "ort-cpu": [2.25]}

    from onnx import TensorProto, helper

    tile = [1, 1, 64, 80, 80]  # the fixed-size artifact whose runs were timed: the choice records that size
    graph = helper.make_graph([helper.make_node("Identity", ["actual_input_1"], ["output1"])], "g",
                              [helper.make_tensor_value_info("actual_input_1", TensorProto.FLOAT, tile)],
                              [helper.make_tensor_value_info("output1", TensorProto.FLOAT, tile)])
    onnx_bytes = helper.make_model(graph).SerializeToString()
    cache = ArtifactCache(tmp_path)
    choice = select_backend("auto", cache=cache, model=object(), onnx=lambda: onnx_bytes, benchmark=timing,
                            cuda_available=lambda: False)
    assert choice.backend == "torch-cpu" and choice.times_s == {"torch-cpu": 1.6, "ort-cpu": 2.25}
    assert choice.spatial == (64, 80, 80) and "per 1×1×64×80×80 forward" in choice.describe()
    again = select_backend("auto", cache=cache, model=object(), onnx=lambda: onnx_bytes, benchmark=timing,
                           cuda_available=lambda: False)
    assert again.cached and calls == [1]  # once per machine
