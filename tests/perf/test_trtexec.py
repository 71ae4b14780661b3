"""trtexec logs: the T4 baseline (TensorRT 7 blocks, >= 8 one-line metrics), and what they must not be confused with."""

from __future__ import annotations

import pytest

from vnet_accept.perf.measurement import PerfFileError
from vnet_accept.perf.parsers import parse_perf_file, parse_perf_text
from vnet_accept.perf.trtexec import TRT7_FORMAT, TRT8_FORMAT, _version_from_tag
from vnet_accept.reference import T4_FPS, T4_FPS_BASIS


@pytest.mark.parametrize("batch_size", sorted(T4_FPS))
def test_port_t4_logs_reproduce_the_port_table(transcripts, batch_size):
    result = parse_perf_file(transcripts / f"trtexec_t4_bs{batch_size}.log")
    (m,) = result.measurements
    assert result.file_format == TRT7_FORMAT
    assert (m.scope, m.batch_size, m.basis) == ("gpu", batch_size, T4_FPS_BASIS[batch_size])
    assert round(m.fps, 5) == T4_FPS[batch_size]  # the port's table has five decimals


def test_statistic_is_explicit_and_selectable(transcripts):
    bs1 = transcripts / "trtexec_t4_bs1.log"
    bs16 = transcripts / "trtexec_t4_bs16.log"
    assert parse_perf_file(bs1, statistic="mean").measurements[0].fps == pytest.approx(1000 / 97.0678)
    assert parse_perf_file(bs1, statistic="median").measurements[0].fps == pytest.approx(1000 / 96.9087)
    assert parse_perf_file(bs16, statistic="median").measurements[0].fps == pytest.approx(16000 / 1574.94)
    (m,) = parse_perf_file(bs16).measurements
    assert m.alternatives == pytest.approx({"mean": 16000 / 1575.22, "median": 16000 / 1574.94})


def test_full_trt7_log_reads_gpu_compute_not_host_latency(perf_fixtures):
    (m,) = parse_perf_file(perf_fixtures / "trtexec7_t4_vnet_full_bs1.log", statistic="mean").measurements
    assert m.latency.mean_ms == 97.0544  # GPU Compute; Host Latency's mean is 98.3947
    assert (m.latency.median_ms, m.latency.p99_ms, m.latency.count) == (96.9012, 103.877, 31)
    assert m.batch_size_source == "content (--shapes actual_input_1:1x1x64x80x80 in the command)"
    assert not m.warnings
    assert any("0 qps" in n for n in m.notes)


def test_trt8_one_line_metrics(perf_fixtures):
    result = parse_perf_file(perf_fixtures / "trtexec8_t4_vnet_bs16.log")
    (m,) = result.measurements
    assert result.file_format == TRT8_FORMAT
    assert m.latency.mean_ms == 1566.52 and m.basis == "mean"  # not "Latency" (host) nor the Total line
    assert m.fps == pytest.approx(16000 / 1566.52)
    assert (m.tool_version, m.device_name, m.input_shape) == ("8.6.1", "Tesla T4", (16, 1, 64, 80, 80))
    assert m.latency.count == round(17.2317e3 / 1566.52)
    assert not m.warnings
    assert any("0.633271 qps" in n for n in m.notes)


def test_trtexec_wrapped_by_ais_bench_needs_a_batch_size(real_transcripts):
    path = real_transcripts / "ais_bench_backend_trtexec_wrapped_perf_summary.txt"
    with pytest.raises(PerfFileError, match="no batch size: the log has no trtexec command line"):
        parse_perf_file(path)
    (m,) = parse_perf_file(path, batch_size=1).measurements
    assert m.fps == pytest.approx(1000 / 8.19409)  # bs1 under "port": the median of GPU Compute Time


def test_trt8_summary_excerpt(real_transcripts):
    (m,) = parse_perf_file(real_transcripts / "trtexec_trt8.x_t4_regnety_perf_summary_excerpt.txt",
                           batch_size=1, statistic="mean").measurements
    assert m.latency.mean_ms == 4.29297


def test_trt10_full_log_warns_it_is_no_t4_baseline(real_transcripts):
    (m,) = parse_perf_file(real_transcripts / "trtexec_trt10.16_h100_onnx_build_and_run_full.log").measurements
    assert (m.batch_size, m.tool_version, m.input_name) == (1, "10.16.1", "x")
    assert m.latency.median_ms == 0.0361328
    warnings = " | ".join(m.warnings)
    assert "1x1x28x28 is not VNet's" in warnings and "FP32" in warnings and "not a T4" in warnings


def test_trt7_excerpt_with_enqueue_block_first(real_transcripts):
    (m,) = parse_perf_file(real_transcripts / "trtexec_trt7.2_t4_ufld_bs1_summary_excerpt.txt").measurements
    assert m.latency.median_ms == 1.51758  # not the Enqueue Time block's 0.251221
    assert any("input:1x3x288x800" in w for w in m.warnings)


def test_wrong_model_in_the_command_is_flagged(perf_fixtures):
    (m,) = parse_perf_file(perf_fixtures / "trtexec7_t4_bs16_wrong_model.log").measurements
    assert m.batch_size == 16
    assert any("16x3x96x96 is not VNet's actual_input_1:16x1x64x80x80" in w for w in m.warnings)
    assert any("nested_unet.onnx" in n for n in m.notes)


def test_failed_run_is_refused(perf_fixtures):
    with pytest.raises(PerfFileError, match="FAILED"):
        parse_perf_file(perf_fixtures / "trtexec7_failed_bs1.log")


def test_two_runs_in_one_log_are_refused(transcripts):
    text = (transcripts / "trtexec_t4_bs1.log").read_text() * 2
    with pytest.raises(PerfFileError, match="2 GPU Compute summaries"):
        parse_perf_text(text, "trtexec_t4_bs1.log")


def test_build_only_log_is_named():
    text = "&&&& RUNNING TensorRT.trtexec # trtexec --onnx=vnet.onnx --saveEngine=vnet.plan\n[I] Engine built\n"
    with pytest.raises(PerfFileError, match="without a GPU Compute summary"):
        parse_perf_text(text, "build_bs1.log")


def test_implicit_batch_option():
    text = ("&&&& PASSED TensorRT.trtexec # trtexec --onnx=vnet.onnx --fp16 --batch=4\n"
            "[I] GPU Compute\n[I] mean: 400 ms\n[I] median: 399 ms\n")
    (m,) = parse_perf_text(text, "t4.log").measurements
    assert (m.batch_size, m.fps) == (4, pytest.approx(10.0))


def test_units_in_seconds_are_converted():
    text = "[I] GPU Compute Time: min = 0.09 s, max = 0.11 s, mean = 0.1 s, median = 0.1 s\n"
    (m,) = parse_perf_text(text, "trtexec_bs1.log").measurements
    assert m.latency.mean_ms == pytest.approx(100.0)


@pytest.mark.parametrize("tag, version", [("101601", "10.16.1"), ("8601", "8.6.1"), ("7234", "7.2.34")])
def test_version_tags(tag, version):
    assert _version_from_tag(tag) == version
