"""The live collector with stand-in tools (``atc``: a shell script writing an OM; ais_bench and the legacy
benchmark: Python stand-ins writing files as the real tools name them). They cover the wiring - OM cache, ATC
console and exit status, sharding over chips, the layout written, failures - not the real tools' behaviour."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.ascend.atc import AtcError
from vnet_accept.ascend.collect import LiveCollector
from vnet_accept.ascend.evidence import LiveEvidence
from vnet_accept.ascend.results_folder import check_inputs, collect_perf, load_npu_results
from vnet_accept.ascend.tools import ToolCommand
from vnet_accept.cache import ArtifactCache
from vnet_accept.errors import ToolError
from vnet_accept.io_utils import sha256_bytes

STANDINS = Path(__file__).resolve().parents[2] / "fixtures" / "ascend" / "standins"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ascend"


@pytest.fixture
def manifest(tmp_path):
    """Three input tiles (values 0, 1, 2) with a manifest, as the gate's preprocessing writes them."""
    from vnet_accept.data.prepare import load_manifest

    prep = tmp_path / "prep_bin"
    prep.mkdir()
    entries = []
    for i in range(3):
        data = np.full((64, 80, 80), float(i), dtype="<f4").tobytes()
        (prep / f"{i}.bin").write_bytes(data)
        entries.append({"index": i, "file": f"{i}.bin", "uid": "1.2.3", "tile": i,
                        "bounds": [[0, 64], [0, 80], [0, 80]], "sha256": sha256_bytes(data), "foreground_voxels": 1})
    (prep / "manifest.json").write_text(json.dumps({"manifest_version": 1, "complete": True, "uids": ["1.2.3"],
                                                    "uids_requested": 1, "entries": entries, "skipped_tiles": [],
                                                    "failures": []}))
    return load_manifest(prep)


def collector(tmp_path, manifest, stand_in, tool: str, atc_exit: int = 0, **kwargs) -> LiveCollector:
    console = (FIXTURES / ("atc_success_vnet_bs1.txt" if atc_exit == 0 else "atc_failed_E10001_soc_version.txt"))
    atc = stand_in("atc", console, exit_code=atc_exit, om_suffix=".om" if atc_exit == 0 else None)
    onnx = tmp_path / "vnet.onnx"
    onnx.write_bytes(b"onnx")
    script = STANDINS / ("ais_bench_standin.py" if tool == "ais_bench" else "benchmark_standin.py")
    return LiveCollector(tmp_path / "npu-results", onnx=onnx, manifest=manifest, soc_version="Ascend310",
                         atc=ToolCommand("atc", (str(atc.path),), "test"),
                         tool=ToolCommand(tool, (sys.executable, str(script)), "test"),
                         cache=ArtifactCache(tmp_path / "cache"), **kwargs)


def test_ais_bench_run_over_two_chips_gives_the_replay_layout(tmp_path, manifest, stand_in):
    c = collector(tmp_path, manifest, stand_in, "ais_bench", device_ids=(0, 1), loops=5)
    c.dataset(2)
    c.perf(2)
    root = c.root
    assert sorted(p.name for p in (root / "result_bs2").iterdir()) == ["0_0.bin", "1_0.bin", "2_0.bin"]
    assert (root / "result_bs2_device0_summary.json").is_file() and (root / "result_bs2_device1_summary.json").is_file()
    assert "ATC exit status 0" in (root / "atc_bs2.log").read_text()
    results = load_npu_results(root)
    batch = results.results_for(2)
    assert batch.layout == "ais_bench" and not batch.plan.assumed
    assert batch.plan.complete_batches() == [("0", "1")]  # chip 1 ran tile 2 padded with itself
    assert np.fromfile(batch.outputs()["2"], dtype="<f4")[:3].tolist() == [2.0, 2.0, 2.0]
    assert results.atc[2].succeeded and check_inputs(results, manifest).status == "match"
    perf = collect_perf(results)
    assert perf.chosen_kind[2] == "pure" and sorted(m.device_id for m in perf.chosen[2]) == [0, 1]
    c.dataset(2)  # once per batch size
    record = json.loads((root / "collect.json").read_text())
    assert [s["step"] for s in record["commands"]][:1] == ["atc bs2"]
    assert len([s for s in record["commands"] if s["step"].startswith("dataset")]) == 2  # one per chip


def test_legacy_run_writes_dump_folders_and_info_files(tmp_path, manifest, stand_in):
    c = collector(tmp_path, manifest, stand_in, "benchmark", device_ids=(0, 1))
    c.dataset(1)
    c.perf(1)
    batch = load_npu_results(c.root).results_for(1)
    assert batch.layout == "benchmark" and [d.name for d in batch.located.output_dirs] == \
        ["dumpOutput_device0", "dumpOutput_device1"]
    assert not batch.plan.assumed and batch.plan.batches == (("0",), ("1",), ("2",))
    perf = collect_perf(load_npu_results(c.root))
    assert perf.chosen_kind[1] == "pure" and len(perf.chosen[1]) == 2


def test_atc_failure_keeps_codes_and_exit_status(tmp_path, manifest, stand_in):
    c = collector(tmp_path, manifest, stand_in, "ais_bench", atc_exit=1)
    with pytest.raises(AtcError, match=r"ATC failed for bs4 \(exit status 1; E10001\)"):
        c.dataset(4)
    log = (c.root / "atc_bs4.log").read_text()
    assert "E10001" in log and log.rstrip().endswith("ATC exit status 1")
    evidence = LiveEvidence(c)
    record = evidence.atc(4)
    assert not record.succeeded and record.exit_status == 1
    with pytest.raises(AtcError):
        evidence.batch(4)  # the same failure, not a second ATC run
    assert evidence.perf((4,), "port").failures[4].startswith("ATC failed for bs4")


def test_tool_failure_names_the_chip_and_the_tail(tmp_path, manifest, stand_in, monkeypatch):
    c = collector(tmp_path, manifest, stand_in, "ais_bench", device_ids=(0, 1))
    monkeypatch.setenv("STANDIN_FAIL", "1")
    with pytest.raises(ToolError, match=r"ais_bench bs1 failed on device 0 \(exit status 3; 1 other chip\(s\) too\)"
                       r"\ncommand: .*\noutput tail:\n.*acl open device 0 failed"):
        c.dataset(1)
