"""Batched inference over a manifest: layouts, partial batches, padding, shards, resume, sinks, throughput."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vnet_accept.errors import DataError, UsageError
from vnet_accept.model.flops import gflop_per_tile
from vnet_accept.results.inference import Shard, plan_batches, run_inference, select_shard
from vnet_accept.results.layouts import locate_results, output_relpath, read_output
from vnet_accept.results.synthetic import small_dataset
from vnet_accept.runners.base import Runner, TensorSpec


class FakeRunner(Runner):
    """Per-sample outputs computed from the input (class 1 = the input value, class 0 = 1.0), recording the batch
    sizes it was called with; ``fixed`` makes the batch axis fixed like a static-shape model."""

    backend = "fake"

    def __init__(self, fixed: int | None = None) -> None:
        super().__init__("fake", bn_mode="running")
        self.fixed, self.calls = fixed, []

    def activate_impl(self) -> None:
        pass

    def input_metadata_impl(self):
        return {"actual_input_1": TensorSpec(np.dtype(np.float32), (self.fixed, 1, 64, 80, 80))}

    def infer_impl(self, feed):
        x = feed["actual_input_1"]
        self.calls.append(len(x))
        out = np.empty((len(x), 64, 80, 80, 2), dtype=np.float32)
        out[..., 0], out[..., 1] = 1.0, x[:, 0]
        return {"output1": out}


def expected_output(manifest, entry) -> np.ndarray:
    out = np.empty((64, 80, 80, 2), dtype=np.float32)
    out[..., 0], out[..., 1] = 1.0, manifest.read_input(entry)
    return out


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return small_dataset(tmp_path_factory.mktemp("infer-data")).manifest  # 14 tiles of 3 scans


def test_batches_are_cut_in_manifest_order_and_shards_are_contiguous_whole_batches(manifest):
    batches = plan_batches(manifest.entries, 4)
    assert [len(b) for b in batches] == [4, 4, 4, 2]
    assert [e.index for b in batches for e in b] == list(range(14))
    for n in (1, 2, 3, 4, 6):
        shards = [select_shard(batches, Shard(k, n)) for k in range(1, n + 1)]
        assert [b for s in shards for b in s] == batches  # every batch once, in order
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert Shard.parse("2/4") == Shard(2, 4) and Shard(2, 4).record_name == "vnet_accept_infer_shard2of4.json"
    for text in ("0/4", "5/4", "x", "1/2/3"):
        with pytest.raises(UsageError, match="K/N"):
            Shard.parse(text)


@pytest.mark.parametrize("layout", ["ais_bench", "benchmark", "npy"])
def test_every_tile_is_written_under_its_stem_without_padding(manifest, tmp_path, layout):
    runner = FakeRunner()
    report = run_inference(runner, manifest, tmp_path, layout=layout, batch_size=4, device_id=3, progress=False)
    assert runner.calls == [4, 4, 4, 2] and not runner.is_active  # the last batch runs short; deactivated after
    assert (report.tiles_run, report.batches_run, report.padded_tiles) == (14, 4, 0)
    for entry in manifest.entries:
        path = tmp_path / output_relpath(entry.stem, layout, device_id=3)
        assert np.array_equal(read_output(path), expected_output(manifest, entry))
    found = locate_results(tmp_path)
    assert found.layout == layout and len(found.outputs) == 14
    record = json.loads((tmp_path / "vnet_accept_infer.json").read_text())
    assert record["tiles_run"] == 14 and record["batch_size"] == 4 and record["layout"] == layout
    assert [p.name for p in found.run_records] == ["vnet_accept_infer.json"] and found.extras == ()


def test_a_fixed_batch_model_gets_its_last_batch_padded_and_the_padding_dropped(manifest, tmp_path):
    runner = FakeRunner(fixed=4)
    report = run_inference(runner, manifest, tmp_path, batch_size=4, progress=False)
    assert runner.calls == [4, 4, 4, 4] and report.padded_tiles == 2
    assert len(list(tmp_path.glob("*_0.bin"))) == 14  # the padding's outputs are never written
    last = manifest.entries[-1]
    assert np.array_equal(read_output(tmp_path / f"{last.stem}_0.bin"), expected_output(manifest, last))
    with pytest.raises(UsageError, match="batch axis is fixed at 4; use --batch-size 4 or less"):
        run_inference(FakeRunner(fixed=4), manifest, tmp_path / "big", batch_size=8, progress=False)


def test_shards_fill_one_folder_exactly_as_one_run(manifest, tmp_path):
    run_inference(FakeRunner(), manifest, tmp_path / "one", batch_size=3, progress=False)
    sizes = []
    for k in (1, 2, 3):
        runner = FakeRunner()
        run_inference(runner, manifest, tmp_path / "shared", batch_size=3, shard=Shard(k, 3), progress=False)
        sizes.append(runner.calls)
    assert sizes == [[3, 3], [3, 3], [2]]  # 5 batches of 3 (the last of 2), contiguous
    one = sorted(p.name for p in (tmp_path / "one").glob("*.bin"))
    assert one == sorted(p.name for p in (tmp_path / "shared").glob("*.bin")) and len(one) == 14
    assert all((tmp_path / "one" / n).read_bytes() == (tmp_path / "shared" / n).read_bytes() for n in one)
    assert sorted(p.name for p in (tmp_path / "shared").glob("*.json")) == [
        f"vnet_accept_infer_shard{k}of3.json" for k in (1, 2, 3)]


def test_a_rerun_resumes_and_redoes_only_incomplete_batches(manifest, tmp_path):
    run_inference(FakeRunner(), manifest, tmp_path, batch_size=4, progress=False)
    runner = FakeRunner()
    report = run_inference(runner, manifest, tmp_path, batch_size=4, progress=False)
    assert runner.calls == [] and report.tiles_resumed == 14 and report.render().startswith("ran 0 tiles")
    (tmp_path / "1_0.bin").unlink()  # batch 0
    (tmp_path / "13_0.bin").write_bytes(b"\0" * 100)  # batch 3, truncated
    runner = FakeRunner()
    report = run_inference(runner, manifest, tmp_path, batch_size=4, progress=False)
    assert runner.calls == [4, 2] and (report.tiles_run, report.tiles_resumed) == (6, 8)
    assert np.array_equal(read_output(tmp_path / "13_0.bin"), expected_output(manifest, manifest.entries[13]))
    runner = FakeRunner()
    run_inference(runner, manifest, tmp_path, batch_size=4, resume=False, progress=False)
    assert runner.calls == [4, 4, 4, 2]


def test_a_sink_receives_every_batch_with_or_without_files(manifest, tmp_path):
    seen = []
    run_inference(FakeRunner(), manifest, None, batch_size=5, progress=False,
                  sink=lambda entries, outputs: seen.append(([e.stem for e in entries], outputs.shape)))
    assert seen == [([str(i) for i in range(0, 5)], (5, 64, 80, 80, 2)),
                    ([str(i) for i in range(5, 10)], (5, 64, 80, 80, 2)),
                    ([str(i) for i in range(10, 14)], (4, 64, 80, 80, 2))]
    run_inference(FakeRunner(), manifest, tmp_path, batch_size=7, progress=False)
    resumed = []
    run_inference(FakeRunner(), manifest, tmp_path, batch_size=7, progress=False,
                  sink=lambda entries, outputs: resumed.append(len(outputs)))
    assert resumed == [7, 7]  # resumed batches are read back for the sink
    with pytest.raises(UsageError, match="nothing would be kept"):
        run_inference(FakeRunner(), manifest, None)


def test_layouts_are_not_mixed_in_one_folder(manifest, tmp_path):
    run_inference(FakeRunner(), manifest, tmp_path, batch_size=14, progress=False)
    with pytest.raises(DataError, match="already holds ais_bench outputs .* would mix two layouts"):
        run_inference(FakeRunner(), manifest, tmp_path, layout="npy", progress=False)


def test_throughput_is_reported_in_counted_gflop(manifest, tmp_path):
    report = run_inference(FakeRunner(), manifest, tmp_path, batch_size=7, progress=False, width=2)
    assert report.gflop_per_tile == gflop_per_tile(2)
    assert report.gflop_per_s == pytest.approx(report.backend_tiles_per_s * gflop_per_tile(2))
    assert "GFLOP/s" in report.render() and "counted for width 2" in report.render()
    unknown = run_inference(FakeRunner(), manifest, tmp_path / "w", batch_size=7, progress=False)
    assert unknown.width == 16 and unknown.gflop_per_tile == pytest.approx(285.75, abs=0.01)
    assert "model width unknown" in unknown.notes[0]


def test_progress_can_be_a_callable_told_the_tiles_each_batch_finished(manifest, tmp_path):
    """The gate shows progress through pytest's capture with its own writer: run_inference tells it per batch."""
    done: list[int] = []
    report = run_inference(FakeRunner(), manifest, None, batch_size=5, sink=lambda *_: None, progress=done.append)
    assert sum(done) == report.tiles_run == len(manifest.entries) and max(done) <= 5
