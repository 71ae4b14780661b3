"""ais_bench / ais_infer summaries: JSON files (full, old, re-wrapped fragments) and console logs."""

from __future__ import annotations

import json
import statistics

import pytest

from vnet_accept.perf.ais_bench import CONSOLE_FORMAT, DYMSHAPE_FORMAT, JSON_FORMAT
from vnet_accept.perf.measurement import PerfFileError
from vnet_accept.perf.parsers import parse_perf_file, parse_perf_text
from vnet_accept.perf.rules import assess_run


def test_full_summary_json(perf_fixtures):
    path = perf_fixtures / "result_bs16_summary.json"
    data = json.loads(path.read_text())
    times = data["npu_compute_time_list"]
    result = parse_perf_file(path)
    (m,) = result.measurements
    assert result.file_format == JSON_FORMAT
    assert (m.batch_size, m.device_id, m.scope, m.basis) == (16, 2, "chip", "mean")
    assert m.batch_size_source == "content (args --batchsize 16)"
    assert m.fps == pytest.approx(1000 * 16 / statistics.fmean(times), rel=1e-12)
    assert m.alternatives["median"] == pytest.approx(1000 * 16 / statistics.median(times), rel=1e-12)
    assert (m.latency.count, m.latency.count_source) == (3, "tool")
    assert m.latency.p99_ms == data["NPU_compute_time"]["P99"]
    assert any("3 batches, 48 input files" in note for note in m.notes)
    assert not m.warnings  # its own throughput is 1000·bs/mean


def test_summary_median_on_request(perf_fixtures):
    (m,) = parse_perf_file(perf_fixtures / "result_bs16_summary.json", statistic="median").measurements
    times = json.loads((perf_fixtures / "result_bs16_summary.json").read_text())["npu_compute_time_list"]
    assert m.basis == "median"
    assert m.fps == pytest.approx(1000 * 16 / statistics.median(times), rel=1e-12)
    assert m.metric == "1000·bs / NPU_compute_time.median"


def test_too_few_timed_calls_are_reported(perf_fixtures):
    (m,) = parse_perf_file(perf_fixtures / "result_bs16_summary.json").measurements
    validity = assess_run(m)
    assert not validity.ok
    assert "only 3 timed calls" in validity.describe()


def test_key_equals_value_args_and_model_name(perf_fixtures):
    (m,) = parse_perf_file(perf_fixtures / "perf_bs1_summary.json").measurements
    assert (m.batch_size, m.device_id) == (1, 0)
    assert m.batch_size_source == "content (model name vnet_bs1.om in args)"
    assert m.latency.count == 20


def test_old_ais_infer_sumary_json(perf_fixtures):
    path = perf_fixtures / "2022_09_01-10_00_00" / "sumary.json"
    data = json.loads(path.read_text())
    (m,) = parse_perf_file(path).measurements
    assert (m.batch_size, m.device_id) == (4, 1)
    assert m.latency.p99_ms == data["NPU_compute_time"]["percentile(99%)"]
    assert m.fps == pytest.approx(data["throughput"], rel=1e-12)


def test_re_wrapped_fragments_are_read_with_a_note(real_transcripts):
    (nas,) = parse_perf_file(real_transcripts / "ais_bench_sumary_json_excerpt_nas_fpn_bs1.txt").measurements
    (ghost,) = parse_perf_file(real_transcripts / "ais_infer_sumary_json_excerpt_ghostnet_bs16.txt").measurements
    assert (nas.batch_size, ghost.batch_size) == (1, 16)
    assert nas.fps == pytest.approx(62.17950873049252, rel=1e-9)
    assert ghost.fps == pytest.approx(3438.7935677393734, rel=1e-9)
    assert all(any("opening brace" in n for n in m.notes) for m in (nas, ghost))
    # ghostnet's max (82 ms) is 8.6x its p99: the first, cold call was timed.
    assert assess_run(ghost).warmup_suspect


def test_batch_size_derived_from_throughput_as_last_resort(tmp_path):
    data = {"NPU_compute_time": {"min": 100.0, "max": 100.0, "mean": 100.0, "median": 100.0}, "throughput": 80.0}
    (m,) = parse_perf_text(json.dumps(data), "summary.json").measurements
    assert m.batch_size == 8
    assert "derived" in m.batch_size_source


def test_inconsistent_throughput_warns():
    data = {"NPU_compute_time": {"mean": 100.0, "median": 99.0}, "throughput": 55.0,
            "args": ["ais_bench", "--batchsize", "4"]}
    (m,) = parse_perf_text(json.dumps(data), "x_summary.json").measurements
    assert any("not 1000·bs/mean" in w for w in m.warnings)


@pytest.mark.parametrize("text, reason", [
    ('{"NPU_compute_time": {"mean": 1.0}', "not valid JSON"),
    ('{"throughput": 3.0}', "without an NPU_compute_time object"),
    ('{"NPU_compute_time": {"mean": 0}}', "no positive mean"),
    ('{"NPU_compute_time": {"mean": "fast"}}', "not a number"),
])
def test_broken_json_is_named(text, reason):
    with pytest.raises(PerfFileError, match=reason):
        parse_perf_text(text, "result_bs1_summary.json")


@pytest.mark.parametrize("name, bs, fps", [
    ("ais_bench_console_satrn_bs1_full_summary.txt", 1, 31.506442728849557),
    ("ais_bench_console_rosetta_mobilenetv3_bs1.txt", 1, 2302.359688694924),
    ("ais_bench_console_twins_svt_l_bs64.txt", 64, 148.1286544184991),
    ("ais_bench_console_resnet50_bs1_full_run.txt", 1, 407.16610891670894),
])
def test_real_console_summaries(real_transcripts, name, bs, fps):
    result = parse_perf_file(real_transcripts / name)
    (m,) = result.measurements
    assert result.file_format == CONSOLE_FORMAT
    assert (m.batch_size, m.batch_size_source.startswith("content")) == (bs, True)
    assert m.fps == pytest.approx(fps, rel=1e-9)  # recomputed 1000·bs/mean equals the printed figure
    assert not m.warnings


def test_console_device_from_open_device_line(real_transcripts):
    (m,) = parse_perf_file(real_transcripts / "ais_bench_console_resnet50_bs1_full_run.txt").measurements
    assert m.device_id == 0


def test_multi_device_console_matches_summaries_to_devices(real_transcripts):
    ms = parse_perf_file(real_transcripts / "ais_bench_console_multidevice_resnet50.txt").measurements
    assert {m.device_id: round(m.fps, 6) for m in ms} == {1: 281.388935, 2: 276.54867}
    assert all(any("sum over 2 devices" in n for n in m.notes) for m in ms)


def test_console_table_of_newer_versions(perf_fixtures):
    (m,) = parse_perf_file(perf_fixtures / "ais_bench_console_table_vnet_bs16.log").measurements
    assert (m.batch_size, m.device_id) == (16, 3)
    assert (m.latency.mean_ms, m.latency.median_ms, m.latency.p99_ms) == (614.233, 612.441, 618.1374)
    assert m.fps == pytest.approx(26.04877, rel=1e-5)


def test_truncated_console_uses_the_model_batch_size(perf_fixtures):
    lines = (perf_fixtures / "ais_bench_console_table_vnet_bs16.log").read_text().splitlines()
    truncated = "\n".join(line for line in lines if "Throughput" not in line)
    (m,) = parse_perf_text(truncated, "console.log").measurements
    assert m.batch_size == 16 and "try get model batchsize" in m.batch_size_source
    assert any("truncated" in n for n in m.notes)


def test_dymshape_range_summary(real_transcripts):
    result = parse_perf_file(real_transcripts / "ais_infer_console_dymshape_range_resnet50.txt")
    ms = result.measurements
    assert len(ms) == 8 and {m.file_format for m in ms} == {DYMSHAPE_FORMAT}
    assert (ms[0].batch_size, ms[0].input_shape, ms[0].fps) == (2, (2, 3, 224, 224), 633.5128156214085)
    assert [m.batch_size for m in ms].count(1) == 4
    assert "2,3,224,224 is not VNet's actual_input_1:2,1,64,80,80" in ms[0].warnings[0]


def test_dymshape_failed_shapes_are_left_out():
    text = ("[INFO] run_count:2 success_count:1 avg_throughput:10.0\n"
            "[INFO] 0 dymshape:actual_input_1:1,1,64,80,80 bs:1 result:OK throughput:10.0\n"
            "[INFO] 1 dymshape:actual_input_1:2,1,64,80,80 bs:2 result:NOK throughput:0\n")
    (m,) = parse_perf_text(text, "dym.log").measurements
    assert m.input_shape == (1, 1, 64, 80, 80) and not m.warnings
    assert any("did not run OK" in n for n in m.notes)


def test_fractional_batch_size_is_refused():
    text = "[INFO] throughput 1000*batchsize.mean(1.5)/NPU_compute_time.mean(10.0): 150.0\n"
    with pytest.raises(PerfFileError, match="not a whole number"):
        parse_perf_text(text, "console.log")
