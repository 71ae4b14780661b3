"""Format detection and rejection: every real tool output is read, or refused with a precise reason."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vnet_accept.perf.measurement import NotAPerfFile, PerfFileError
from vnet_accept.perf.parsers import identify, parse_perf_file, parse_perf_paths, parse_perf_text

#: Every file of transcripts/real/: ("read", format key, number of figures) or ("rejected", words of the reason).
REAL_FILES = {
    "ais_bench_backend_trtexec_wrapped_perf_summary.txt": ("rejected", "no batch size"),
    "ais_bench_console_multidevice_resnet50.txt": ("read", "ais_bench_console", 2),
    "ais_bench_console_resnet50_bs1_full_run.txt": ("read", "ais_bench_console", 1),
    "ais_bench_console_rosetta_mobilenetv3_bs1.txt": ("read", "ais_bench_console", 1),
    "ais_bench_console_satrn_bs1_full_summary.txt": ("read", "ais_bench_console", 1),
    "ais_bench_console_twins_svt_l_bs64.txt": ("read", "ais_bench_console", 1),
    "ais_bench_sumary_json_excerpt_nas_fpn_bs1.txt": ("read", "ais_bench_json", 1),
    "ais_infer_console_dymshape_range_resnet50.txt": ("read", "ais_bench_console", 8),
    "ais_infer_sumary_json_excerpt_ghostnet_bs16.txt": ("read", "ais_bench_json", 1),
    "ait_debug_compare_analyser_console_excerpt.txt": ("rejected", "debug compare output"),
    "atc_error_E16005_domain_version_line.txt": ("rejected", "ATC/CANN error message (E16005)"),
    "atc_failed_E19010_no_parser_onnx_convx.txt": ("rejected", "ATC conversion log (failure with E19010)"),
    "atc_failed_E40000_atlas200dk_cann20.1.txt": ("rejected", "ATC conversion log (failure with E40000)"),
    "atc_failed_EZ3003_no_ops_kernel.txt": ("rejected", "ATC conversion log (failure with EZ3003)"),
    "atc_success_with_W11001_warnings_icnet.txt": ("rejected", "ATC conversion log (success with W11001)"),
    "atc_success_with_W11001_warnings_icnet_short.txt": ("rejected", "ATC conversion log (success with W11001)"),
    "atc_success_with_W11001_warnings_luggage_checker.txt": ("rejected", "ATC conversion log (success with W11001)"),
    "benchmark_perf_vision_batchsize_1_device_0_deepmar.txt": ("read", "legacy_perf", 1),
    "benchmark_perf_vision_batchsize_1_device_0_efficientnet_b3.txt": ("read", "legacy_perf", 1),
    "benchmark_pureinfer_console_efficientnet_b3_bs4.txt": ("read", "legacy_pureinfer", 1),
    "benchmark_pureinfer_perf_file_alexnet_bs4.txt": ("read", "legacy_pureinfer", 1),
    "trtexec_trt10.16_h100_onnx_build_and_run_full.log": ("read", "trtexec", 1),
    "trtexec_trt7.2_t4_ufld_bs1_summary_excerpt.txt": ("read", "trtexec", 1),
    "trtexec_trt8.x_t4_regnety_perf_summary_excerpt.txt": ("rejected", "no batch size"),
    "SOURCES.md": ("rejected", "Markdown document"),
}


def test_the_table_covers_every_real_file(real_transcripts):
    on_disk = {p.name for p in real_transcripts.iterdir() if p.is_file()}
    assert on_disk == set(REAL_FILES), "a file was added to or removed from transcripts/real: update REAL_FILES"


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_every_real_file_is_read_or_refused_precisely(real_transcripts, name):
    expected = REAL_FILES[name]
    path = real_transcripts / name
    if expected[0] == "read":
        result = parse_perf_file(path)
        assert (result.kind, len(result.measurements)) == expected[1:]
    else:
        with pytest.raises(PerfFileError) as info:
            parse_perf_file(path)
        assert expected[1] in str(info.value)
        assert str(info.value).startswith(str(path))  # the message names the file


def test_accuracy_line_is_not_a_perf_file(transcripts):
    with pytest.raises(NotAPerfFile, match="post-processing accuracy line"):
        parse_perf_file(transcripts / "postprocess_310_bs1.txt")


def test_binary_files_are_named(tmp_path):
    om = tmp_path / "vnet_bs1.om"
    om.write_bytes(b"IMOD\x00\x01\x02" * 100)
    with pytest.raises(NotAPerfFile, match="Ascend offline model"):
        parse_perf_file(om)


@pytest.mark.parametrize("content, reason", [("", "empty file"), ("  \n\r\n", "empty file"),
                                             ("hello world\n", "no performance figures recognised")])
def test_other_text_is_named(content, reason):
    with pytest.raises(NotAPerfFile, match=reason):
        identify(content, "x.txt")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(PerfFileError, match="no such file"):
        parse_perf_file(tmp_path / "absent.txt")
    with pytest.raises(PerfFileError, match="is a directory"):
        parse_perf_file(tmp_path)


def test_non_utf8_text_does_not_crash(tmp_path):
    path = tmp_path / "perf_vision_batchsize_1_device_0.txt"
    path.write_bytes(b"[e2e] throughputRate: 1, latency: 1000\n[inference] Interface throughputRate: 6.5 \xe9\n")
    with pytest.raises(PerfFileError):
        parse_perf_file(path)


def test_directory_scan_picks_perf_files_and_skips_outputs(tmp_path, perf_fixtures):
    result = tmp_path / "result"
    (result / "dumpOutput_device0").mkdir(parents=True)
    (result / "dumpOutput_device0" / "0_1.bin").write_bytes(b"\x00" * 64)
    (result / "dumpOutput_device0" / "0_1.txt").write_text("1 2 3\n")
    (result / "perf_vision_batchsize_4_device_2.txt").write_text(
        (perf_fixtures / "perf_vision_batchsize_4_device_2.txt").read_text())
    (result / "result_bs16_summary.json").write_text((perf_fixtures / "result_bs16_summary.json").read_text())
    scan = parse_perf_paths([tmp_path])
    assert sorted(m.batch_size for m in scan.measurements) == [4, 16]
    assert not scan.rejected


def test_one_bad_file_does_not_stop_the_others(tmp_path, perf_fixtures):
    scan = parse_perf_paths([tmp_path / "absent.log", perf_fixtures / "trtexec8_t4_vnet_bs16.log"])
    assert len(scan.measurements) == 1 and len(scan.rejected) == 1


# Lines from every grammar, shuffled into arbitrary files: the parsers must answer with figures or a
# PerfFileError, never with another exception.
_FRAGMENTS = [
    "[e2e] throughputRate: 6.1, latency: 1000", "[inference] Interface throughputRate: 6.4",
    "[infer] throughputRate: x, Interface throughputRate: 1e400", "[post] moduleLatency: -1",
    "ave_throughputRate: 0samples/s, ave_latency: 0ms", "[I] GPU Compute", "[I] mean: 0 ms", "[I] median: nan ms",
    "[I] percentile: 5 ms at 99%", "[I] GPU Compute Time: min = 1 ms, mean = 2 ms", "&&&& FAILED TensorRT.trtexec # x",
    "&&&& PASSED TensorRT.trtexec # trtexec --shapes=actual_input_1:0x1x64x80x80", "[INFO] open device 0 success",
    "[INFO] NPU_compute_time (ms): min = 1, max = 2, mean = 1.5, median = 1.5, percentile(99%) = 2",
    "[INFO] throughput 1000*batchsize(4)/NPU_compute_time.mean(0): 0", "i:0 device_1 throughput:5",
    "run_count:1 success_count:1 avg_throughput:1", "0 dymshape:x:1,2 bs:0 result:OK throughput:1",
    '"NPU_compute_time": {"mean": 3}', "ATC run failed", "E10001: bad", "Test set: Error: 1/2 (50%)", "{", "|a|b|",
]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=40)), max_size=12),
       name=st.sampled_from(["x.txt", "perf_vision_batchsize_1_device_0.txt", "t_bs16.log", "s_summary.json"]),
       statistic=st.sampled_from(["port", "mean", "median"]))
def test_no_input_makes_a_parser_crash(lines, name, statistic):
    text = "\n".join(lines)
    try:
        result = parse_perf_text(text, name, statistic=statistic)
    except PerfFileError as exc:
        assert str(exc).startswith(name)
    else:
        assert result.measurements and all(m.fps > 0 and m.batch_size >= 1 for m in result.measurements)
