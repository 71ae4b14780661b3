"""ais_bench and legacy benchmark commands, where their outputs land (0- vs 1-based), and a replayed run whose
summary the performance parser reads back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vnet_accept.ascend.inference import (
    AisBenchRequest,
    LegacyRequest,
    ais_bench_command,
    find_ais_bench_summary,
    legacy_command,
    legacy_pure_command,
    link_inputs,
)
from vnet_accept.ascend.process import run_tool, shell_join
from vnet_accept.ascend.tools import find_ais_bench
from vnet_accept.data.prepare import write_info_file
from vnet_accept.errors import DataError
from vnet_accept.perf.parsers import parse_perf_file, parse_perf_text
from vnet_accept.results.layouts import AIS_BENCH_OUTPUT_INDEX, LEGACY_OUTPUT_INDEX, device_dir_name, output_name

PERF_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "perf"


def test_ais_bench_command_follows_spec():
    request = AisBenchRequest(Path("vnet_bs16.om"), Path("result"), "result_bs16", 16, input=Path("prep_bin"),
                              loop=5, device_id=2)
    assert shell_join(ais_bench_command(request)) == (
        "python3 -m ais_bench --model vnet_bs16.om --input prep_bin --output result --output_dirname result_bs16 "
        "--outfmt BIN --batchsize 16 --loop 5 --device 2")
    pure = AisBenchRequest(Path("vnet_bs1.om"), Path("perf"), "perf_bs1", 1)
    assert "--input" not in ais_bench_command(pure) and "--loop" not in ais_bench_command(pure)
    assert request.result_dir == Path("result/result_bs16")


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"loop": 0}, {"output_dirname": "a/b"},
                                    {"output_dirname": ""}])
def test_ais_bench_request_validation(kwargs):
    base = {"model": Path("m.om"), "output": Path("o"), "output_dirname": "r", "batch_size": 1}
    with pytest.raises(ValueError):
        AisBenchRequest(**{**base, **kwargs})


def test_legacy_command_is_the_spec_line():
    request = LegacyRequest(Path("vnet_bs1.om"), Path("./vnet_prep_bin.info"), 1, device_id=0)
    assert shell_join(legacy_command(request, ["./benchmark.x86_64"])) == (
        "./benchmark.x86_64 -model_type=vision -device_id=0 -batch_size=1 -om_path=vnet_bs1.om "
        "-input_text_path=vnet_prep_bin.info -input_width=80 -input_height=80 -output_binary=True -useDvpp=False")
    assert legacy_pure_command(Path("vnet_bs4.om"), 4, 1, 20, ["./benchmark.x86_64"]) == [
        "./benchmark.x86_64", "-round=20", "-om_path=vnet_bs4.om", "-device_id=1", "-batch_size=4"]
    with pytest.raises(ValueError):
        legacy_pure_command(Path("vnet_bs4.om"), 4, 1, 0, ["b"])


def test_output_indices_differ_between_tools(tmp_path):
    tile = Path("prep_bin/12.bin")
    assert output_name(tile.stem, AIS_BENCH_OUTPUT_INDEX) == "12_0.bin"
    assert output_name(tile.stem, LEGACY_OUTPUT_INDEX) == "12_1.bin" and device_dir_name(3) == "dumpOutput_device3"


@pytest.fixture
def legacy_perf_text() -> str:
    return "[e2e] throughputRate: 6.24, latency: 171769\n[inference] Interface throughputRate: 6.49396\n"


def test_legacy_perf_file_names_are_what_the_parser_reads(tmp_path, legacy_perf_text):
    path = tmp_path / "result" / "perf_vision_batchsize_16_device_1.txt"  # the legacy tool's name for it
    path.parent.mkdir(parents=True)
    path.write_text(legacy_perf_text)
    (m,) = parse_perf_file(path).measurements
    assert (m.batch_size, m.device_id) == (16, 1)
    pure = tmp_path / "result" / "PureInfer_perf_of_vnet_bs8_bs8_in_device_2.txt"
    pure.write_text("ave_throughputRate = 6.4samples/s, ave_latency = 156.2ms\n")
    (m,) = parse_perf_file(pure).measurements
    assert (m.batch_size, m.device_id) == (8, 2)


def test_info_file(tmp_path):
    info = write_info_file([Path("/d/0.bin"), Path("/d/1.bin")], tmp_path / "vnet_prep_bin.info")
    assert info.read_text() == "0 /d/0.bin 80 80\n1 /d/1.bin 80 80\n"
    with pytest.raises(DataError, match="whitespace"):
        write_info_file([Path("/my data/0.bin")], tmp_path / "x.info")


def test_link_inputs(tmp_path):
    tiles = []
    for i in range(3):
        tiles.append(tmp_path / "tiles" / f"{i}.bin")
        tiles[-1].parent.mkdir(exist_ok=True)
        tiles[-1].write_bytes(b"\0" * 8)
    shard = link_inputs(tiles[:2], tmp_path / "shard0")
    assert sorted(os.listdir(shard)) == ["0.bin", "1.bin"] and (shard / "0.bin").read_bytes() == b"\0" * 8
    link_inputs(tiles[:2], tmp_path / "shard0")  # idempotent
    with pytest.raises(DataError, match="distinct file name"):
        link_inputs([tiles[0], tmp_path / "other" / "0.bin"], tmp_path / "shard1")


def test_summary_location(tmp_path):
    with pytest.raises(DataError, match="no ais_bench summary in .*result_bs4_summary.json"):
        find_ais_bench_summary(tmp_path, "result_bs4")
    old = tmp_path / "2022_09_01-10_00_00" / "sumary.json"
    old.parent.mkdir()
    old.write_text("{}")
    assert find_ais_bench_summary(tmp_path) == old
    named = tmp_path / "result_bs4_summary.json"
    named.write_text("{}")
    assert find_ais_bench_summary(tmp_path, "result_bs4") == named


def test_replayed_ais_bench_run_is_read_back(stand_in, tmp_path):
    """A stand-in replays an ais_bench run (console, summary, outputs): command, location and parsing fit."""
    out = tmp_path / "result"
    request = AisBenchRequest(Path("vnet_bs16.om"), out, "result_bs16", 16, input=tmp_path / "prep_bin", device_id=3)
    tool = stand_in("ais_bench", output=PERF_FIXTURES / "ais_bench_console_table_vnet_bs16.log", writes={
        str(out / "result_bs16_summary.json"): (PERF_FIXTURES / "result_bs16_summary.json").read_text(),
        str(request.result_dir / "0_0.bin"): "x"})
    result = run_tool(ais_bench_command(request, find_ais_bench(str(tool.path))), timeout_s=30)
    assert result.returncode == 0 and tool.calls[0][:2] == ["--model", "vnet_bs16.om"]
    (console,) = parse_perf_text(result.output, "console.log").measurements
    (summary,) = parse_perf_file(find_ais_bench_summary(out, "result_bs16")).measurements
    assert console.fps == pytest.approx(summary.fps, rel=1e-5)
    written = [request.result_dir / output_name(str(i), AIS_BENCH_OUTPUT_INDEX) for i in range(2)]
    assert [p.is_file() for p in written] == [True, False]

