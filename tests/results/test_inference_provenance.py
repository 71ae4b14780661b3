"""Issue 12: ``run_inference`` ties every output to what made it and never adopts outputs made otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vnet_accept.errors import DataError
from vnet_accept.results.inference import Shard, model_identity, run_inference
from vnet_accept.results.synthetic import small_dataset
from vnet_accept.runners.base import Runner, TensorSpec


class FakeRunner(Runner):
    """Outputs computed from the input; ``model`` stands for what the runner runs (its identity)."""

    backend = "fake"

    def __init__(self, model: bytes = b"model-a", bn_mode: str = "running", name: str = "fake") -> None:
        super().__init__(name, bn_mode=bn_mode)
        self.model, self.calls = model, []

    def activate_impl(self) -> None:
        pass

    def input_metadata_impl(self):
        return {"actual_input_1": TensorSpec(np.dtype(np.float32), (None, 1, 64, 80, 80))}

    def infer_impl(self, feed):
        x = feed["actual_input_1"]
        self.calls.append(len(x))
        out = np.empty((len(x), 64, 80, 80, 2), dtype=np.float32)
        out[..., 0], out[..., 1] = 1.0, x[:, 0] + (0.5 if self.model == b"model-b" else 0.0)
        return {"output1": out}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return small_dataset(tmp_path_factory.mktemp("provenance-data")).manifest  # 14 tiles of 3 scans


def _run(manifest, out, **kwargs):
    runner = kwargs.pop("runner", None) or FakeRunner()
    report = run_inference(runner, manifest, out, progress=False, **{"batch_size": 4, **kwargs})
    return runner, report


def test_the_record_ties_every_output_to_model_backend_mode_batch_and_input(manifest, tmp_path):
    _run(manifest, tmp_path)
    record = json.loads((tmp_path / "vnet_accept_infer.json").read_text())
    assert record["complete"] is True
    made_by = record["made_by"]
    assert made_by["model"] == {"kind": "bytes", "sha256": model_identity(FakeRunner())["sha256"]}
    assert (made_by["backend"], made_by["bn_mode"], made_by["batch_size"], made_by["layout"]) == (
        "fake", "running", 4, "ais_bench")
    assert set(record["outputs"]) == {f"{e.stem}_0.bin" for e in manifest.entries}
    for entry in manifest.entries:
        item = record["outputs"][f"{entry.stem}_0.bin"]
        assert (item["uid"], item["tile"], item["input_sha256"]) == (entry.uid, entry.tile, entry.sha256)
        assert len(item["output_sha256"]) == 64


@pytest.mark.parametrize(("change", "named"), [
    (dict(runner=FakeRunner(model=b"model-b")), "model"),
    (dict(runner=FakeRunner(bn_mode="batch")), "bn_mode"),
    (dict(runner=FakeRunner(name="other-backend")), "backend"),
    (dict(batch_size=2), "batch_size"),
    (dict(device_id=1), "device_id"),
])
def test_outputs_of_another_model_backend_mode_or_batch_size_are_refused(manifest, tmp_path, change, named):
    _run(manifest, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(DataError, match=rf"{tmp_path}.*made by another run: vnet_accept_infer.json says {named}"):
        _run(manifest, tmp_path, **change)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing adopted, nothing rewritten


def test_outputs_no_record_accounts_for_are_never_adopted(manifest, tmp_path):
    _run(manifest, tmp_path / "ours")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "3_0.bin").write_bytes((tmp_path / "ours" / "3_0.bin").read_bytes())  # a good file, not ours
    with pytest.raises(DataError, match=r"1 output file\(s\) that no vnet-accept run record in it accounts for "
                                        r"\(e\.g\. 3_0\.bin\)"):
        _run(manifest, foreign)


def test_a_record_without_provenance_or_unreadable_is_refused(manifest, tmp_path):
    _run(manifest, tmp_path)
    record = json.loads((tmp_path / "vnet_accept_infer.json").read_text())
    del record["made_by"]  # as an older vnet-accept wrote it
    (tmp_path / "vnet_accept_infer.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match="does not say which model"):
        _run(manifest, tmp_path)
    (tmp_path / "vnet_accept_infer.json").write_text('{"made_by": ')
    with pytest.raises(DataError, match="not a readable run record"):
        _run(manifest, tmp_path)


def test_tiles_made_again_differently_are_a_mismatch(manifest, tmp_path):
    _run(manifest, tmp_path)
    record = json.loads((tmp_path / "vnet_accept_infer.json").read_text())
    record["outputs"]["5_0.bin"]["input_sha256"] = "f" * 64
    (tmp_path / "vnet_accept_infer.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match="made 5_0.bin from another input than this manifest's 5.bin"):
        _run(manifest, tmp_path)


def test_an_output_changed_after_the_run_is_computed_again_not_resumed(manifest, tmp_path):
    _run(manifest, tmp_path)
    path = tmp_path / "6_0.bin"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, other content: only its sha256 tells
    path.write_bytes(bytes(data))
    runner, report = _run(manifest, tmp_path)
    assert runner.calls == [4] and (report.tiles_run, report.tiles_resumed) == (4, 10)  # batch 1 (tiles 4-7)
    assert path.read_bytes() != bytes(data)


def test_a_killed_run_resumes_what_its_record_vouches_for_and_reruns_the_rest(manifest, tmp_path):
    class Killed(Exception):
        pass

    class DiesInBatch3(FakeRunner):
        def infer_impl(self, feed):
            if len(self.calls) == 2:
                raise Killed
            return super().infer_impl(feed)

    with pytest.raises(Killed):
        _run(manifest, tmp_path, runner=DiesInBatch3())
    record = json.loads((tmp_path / "vnet_accept_infer.json").read_text())
    assert record["complete"] is False and len(record["planned"]) == 14
    # Outputs written after the record's last update are in its plan: run again, never refused or adopted.
    record["outputs"] = {k: v for k, v in record["outputs"].items() if k in ("0_0.bin", "1_0.bin", "2_0.bin",
                                                                              "3_0.bin")}
    (tmp_path / "vnet_accept_infer.json").write_text(json.dumps(record))
    runner, report = _run(manifest, tmp_path)
    assert runner.calls == [4, 4, 2] and report.tiles_resumed == 4
    assert json.loads((tmp_path / "vnet_accept_infer.json").read_text())["complete"] is True


def test_shards_of_one_run_share_a_folder_and_resume_across_shard_counts(manifest, tmp_path):
    for k in (1, 2):
        _run(manifest, tmp_path, shard=Shard(k, 2))
    runner, report = _run(manifest, tmp_path)  # one run over the whole: every output vouched for by a shard
    assert runner.calls == [] and report.tiles_resumed == 14


def test_model_identity_hashes_files_and_state_dicts(tmp_path):
    import torch

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"graph")
    file_runner = FakeRunner()
    file_runner.model = onnx
    assert model_identity(file_runner)["kind"] == "file" and model_identity(file_runner)["name"] == "m.onnx"
    module_runner = FakeRunner()
    module_runner.model = torch.nn.Linear(2, 2)
    first = model_identity(module_runner)
    with torch.no_grad():
        module_runner.model.weight[0, 0] += 1
    assert first["kind"] == "state_dict" and model_identity(module_runner)["sha256"] != first["sha256"]
