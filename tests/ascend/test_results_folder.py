"""Reading a ``--npu-results`` folder: batch-size folders in both layouts, batch composition, ATC consoles,
npu-smi, the inputs check against the gate's manifest, and which throughput figures are judged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.ascend.results_folder import check_inputs, collect_perf, load_npu_results
from vnet_accept.errors import DataError
from vnet_accept.results.layouts import OUTPUT_SHAPE, ResultsError, write_output

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ZERO = np.zeros(OUTPUT_SHAPE, dtype=np.float32)


def outputs(folder: Path, stems, layout: str = "ais_bench", device_id: int = 0) -> None:
    for stem in stems:
        write_output(folder, str(stem), ZERO, layout, device_id)


def summary(path: Path, batches: list[list[str]], **extra) -> None:
    files = {str(i): {"infiles": [f"prep_bin/{s}.bin" for s in b]} for i, b in enumerate(batches)}
    path.write_text(json.dumps({"filesinfo": files, "NPU_compute_time": {"mean": 10.0}, **extra}))


def test_finds_both_layouts_and_reports_what_it_cannot_place(tmp_path):
    outputs(tmp_path / "result_bs16", range(3))
    summary(tmp_path / "result_bs16_summary.json", [["0", "1", "2"]])
    outputs(tmp_path / "bs1" / "result", [0, 1], "benchmark", device_id=0)
    outputs(tmp_path / "bs1" / "result", [2], "benchmark", device_id=1)
    outputs(tmp_path / "leftovers", [0])
    results = load_npu_results(tmp_path)
    assert sorted(results.batches) == [1, 16]
    assert results.batches[1].layout == "benchmark" and results.batches[16].layout == "ais_bench"
    assert results.batches[16].summaries == (tmp_path / "result_bs16_summary.json",)
    assert "leftovers" in results.notes[0] and "name them result_bs<N>" in results.notes[0]
    assert sorted(results.batches[1].outputs()) == ["0", "1", "2"]
    with pytest.raises(DataError, match=r"no bs8 results in .*expected result_bs8/<stem>_0.bin.*found bs1: bs1"):
        results.results_for(8)


def test_a_batch_size_twice_is_an_error_naming_both(tmp_path):
    outputs(tmp_path / "result_bs4", [0])
    outputs(tmp_path / "bs4" / "result", [0], "benchmark")
    results = load_npu_results(tmp_path)
    with pytest.raises(DataError, match=r"two result folders for bs4 .*bs4.*result_bs4.*keep one"):
        results.results_for(4)


def test_off_by_one_names_are_reported_by_file(tmp_path):
    outputs(tmp_path / "bs2" / "result", [0, 1], "benchmark")
    for f in (tmp_path / "bs2" / "result" / "dumpOutput_device0").iterdir():
        f.rename(f.with_name(f.name.replace("_1.bin", "_0.bin")))
    batch = load_npu_results(tmp_path).results_for(2)
    with pytest.raises(ResultsError, match="2 output_index") as info:
        batch.outputs({"0": "scan a, tile 0", "1": "scan a, tile 1"})
    assert "0_0.bin (scan a, tile 0): output index 0 where the legacy benchmark tool writes 0_1.bin" in str(info.value)


def test_batch_composition_from_filesinfo_info_files_or_assumed(tmp_path):
    outputs(tmp_path / "result_bs2", range(5))
    summary(tmp_path / "result_bs2_summary.json", [["0", "1"], ["2", "3"], ["4", "4"]])  # last batch padded
    outputs(tmp_path / "result_bs4", range(10, 12))
    outputs(tmp_path / "bs3" / "result", range(6), "benchmark")
    (tmp_path / "bs3" / "vnet_prep_bin.info").write_text("".join(f"{i} ./prep_bin/{s}.bin 80 80\n"
                                                                 for i, s in enumerate([5, 4, 3, 2, 1, 0])))
    results = load_npu_results(tmp_path)
    plan2 = results.batches[2].plan
    assert not plan2.assumed and plan2.complete_batches() == [("0", "1"), ("2", "3")]
    assert plan2.batch_of("3") == ("2", "3")
    plan4 = results.batches[4].plan
    assert plan4.assumed and plan4.batches == (("10", "11"),) and "natural file-name order" in plan4.source
    plan3 = results.batches[3].plan
    assert not plan3.assumed and plan3.batches == (("5", "4", "3"), ("2", "1", "0"))


def test_one_info_file_over_several_chips_is_split_by_device(tmp_path):
    outputs(tmp_path / "bs2" / "result", [0, 1, 2], "benchmark", 0)
    outputs(tmp_path / "bs2" / "result", [3, 4], "benchmark", 1)
    (tmp_path / "vnet_prep_bin.info").write_text("".join(f"{s} ./prep_bin/{s}.bin 80 80\n" for s in range(5)))
    plan = load_npu_results(tmp_path).batches[2].plan
    assert plan.assumed and plan.batches == (("0", "1"), ("2",), ("3", "4"))


def test_atc_consoles_with_and_without_exit_status(tmp_path):
    outputs(tmp_path / "result_bs1", [0])
    ok = (FIXTURES / "ascend" / "atc_success_vnet_bs1.txt").read_text()
    (tmp_path / "atc_bs1.log").write_text(ok + "ATC exit status 0\n")
    (tmp_path / "atc_bs4.txt").write_text(ok)
    failed = (FIXTURES / "ascend" / "atc_failed_E10001_soc_version.txt").read_text()
    (tmp_path / "atc_bs16.log").write_text(failed + "\nATC exit status 255\n")
    (tmp_path / "atc_bs8.log").write_text(ok + "ATC exit status 1\n")
    atc = load_npu_results(tmp_path).atc
    assert atc[1].succeeded and atc[1].exit_status == 0
    assert atc[4].succeeded and atc[4].exit_status is None  # judged by the console; the test says so
    assert not atc[16].succeeded and atc[16].exit_status == 255 and "E10001" in atc[16].log.error_codes
    assert not atc[8].succeeded  # a success line does not outvote a non-zero exit status


def test_npu_smi_gives_the_soc_and_an_unhealthy_chip_is_a_problem(tmp_path):
    shutil.copy(FIXTURES / "ascend" / "npu_smi_info_310p3_with_processes.txt", tmp_path / "npu-smi.txt")
    assert load_npu_results(tmp_path).soc_version == "Ascend310P3"
    shutil.copy(FIXTURES / "ascend" / "npu_smi_info_310_card.txt", tmp_path / "npu-smi.txt")
    results = load_npu_results(tmp_path)
    assert results.soc_version is None and "health is Warning" in results.problems[0]


def test_several_onnx_files_are_not_guessed_between(tmp_path):
    (tmp_path / "a.onnx").write_bytes(b"x")
    assert load_npu_results(tmp_path).onnx == tmp_path / "a.onnx"
    (tmp_path / "b.onnx").write_bytes(b"x")
    results = load_npu_results(tmp_path)
    assert results.onnx is None and "2 ONNX files" in results.problems[0]


def _manifest(directory: Path, shas: list[str]) -> object:
    from vnet_accept.data.prepare import load_manifest

    entries = [{"index": i, "file": f"{i}.bin", "uid": "1.2.3", "tile": i, "bounds": [[0, 64], [0, 80], [0, 80]],
                "sha256": sha, "foreground_voxels": 10} for i, sha in enumerate(shas)]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(json.dumps({
        "manifest_version": 1, "complete": True, "uids": ["1.2.3"], "uids_requested": 1, "entries": entries,
        "skipped_tiles": [], "failures": []}))
    return load_manifest(directory)


def test_inputs_check_by_manifest_copy_or_sha256_listing(tmp_path):
    ours = _manifest(tmp_path / "ours", ["a" * 64, "b" * 64])
    results_dir = tmp_path / "results"
    assert check_inputs(load_npu_results(_mk(results_dir)), ours).status == "unverified"
    _manifest(results_dir, ["a" * 64, "b" * 64])
    check = check_inputs(load_npu_results(results_dir), ours)
    assert check.status == "match" and check.checked == 2
    _manifest(results_dir, ["a" * 64, "c" * 64])
    check = check_inputs(load_npu_results(results_dir), ours)
    assert check.status == "differ" and check.describe().startswith("WRONG INPUTS: 1 of 2 tiles differ")
    assert "1.bin (scan 1.2.3, tile 1) has another sha256" in check.describe()
    (results_dir / "manifest.json").unlink()
    (results_dir / "prep_bin.sha256").write_text(f"{'a' * 64}  prep_bin/0.bin\n{'b' * 64} *prep_bin/1.bin\n")
    assert check_inputs(load_npu_results(results_dir), ours).status == "match"
    (results_dir / "prep_bin.sha256").write_text(f"{'a' * 64}  prep_bin/0.bin\n{'b' * 64}  prep_bin/1.bin\n"
                                                 f"{'d' * 64}  prep_bin/2.bin\n")
    check = check_inputs(load_npu_results(results_dir), ours)
    assert check.status == "differ" and "2.bin is there but not in the gate's manifest" in check.differing
    (results_dir / "prep_bin.sha256").write_text("not a listing\n")
    assert check_inputs(load_npu_results(results_dir), ours).status == "differ"


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_throughput_prefers_the_pure_sweep_and_ignores_atc_logs(tmp_path):
    perf = _mk(tmp_path / "perf")
    shutil.copy(FIXTURES / "perf" / "perf_bs1_summary.json", perf)
    shutil.copy(FIXTURES / "perf" / "PureInfer_perf_of_vnet_bs16_in_device_3.txt", perf)
    shutil.copy(FIXTURES / "perf" / "result_bs16_summary.json", tmp_path)
    shutil.copy(FIXTURES / "perf" / "perf_vision_batchsize_4_device_2.txt", _mk(tmp_path / "bs4" / "result"))
    shutil.copy(FIXTURES / "perf" / "trtexec8_t4_vnet_bs16.log", tmp_path)
    shutil.copy(FIXTURES / "ascend" / "atc_success_vnet_bs1.txt", tmp_path / "atc_bs1.log")
    evidence = collect_perf(load_npu_results(tmp_path))
    assert evidence.chosen_kind == {1: "pure", 4: "dataset", 16: "pure"}
    assert [Path(m.source_file).name for m in evidence.chosen[16]] == ["PureInfer_perf_of_vnet_bs16_in_device_3.txt"]
    assert sorted(k for _, k in evidence.all) == ["dataset", "dataset", "pure", "pure"]
    assert [Path(p).name for p in evidence.gpu_logs] == ["trtexec8_t4_vnet_bs16.log"]
    assert not evidence.rejected
