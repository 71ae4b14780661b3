"""The legacy benchmark tool's perf_vision files and pure-inference summaries."""

from __future__ import annotations

import pytest

from vnet_accept.perf.legacy import LEGACY_FORMAT, PUREINFER_FORMAT
from vnet_accept.perf.measurement import PerfFileError
from vnet_accept.perf.parsers import parse_perf_file, parse_perf_text
from vnet_accept.reference import PORT_310_CHIP_FPS, TEST_SPLIT_TILES


@pytest.mark.parametrize("batch_size", sorted(PORT_310_CHIP_FPS))
def test_port_perf_files_give_the_port_chip_figures(transcripts, batch_size):
    path = next(transcripts.glob(f"perf_vision_batchsize_{batch_size}_device_*.txt"))
    result = parse_perf_file(path)
    (m,) = result.measurements
    assert result.file_format == LEGACY_FORMAT
    assert (m.batch_size, m.batch_size_source) == (batch_size, "file name")
    assert m.fps == PORT_310_CHIP_FPS[batch_size]
    assert (m.scope, m.basis, m.metric) == ("chip", "mean", "Interface throughputRate")
    # Every run processed the whole test split: e2e throughputRate x e2e latency = 1072 tiles.
    assert any(f"{TEST_SPLIT_TILES} samples" in note for note in m.notes)
    assert m.latency.count == -(-TEST_SPLIT_TILES // batch_size)


def test_device_id_comes_from_the_file_name(transcripts):
    (m,) = parse_perf_file(transcripts / "perf_vision_batchsize_16_device_1.txt").measurements
    assert m.device_id == 1


def test_infer_and_post_labels_with_unit_suffixes(perf_fixtures):
    (m,) = parse_perf_file(perf_fixtures / "perf_vision_batchsize_4_device_2.txt").measurements
    assert (m.fps, m.batch_size, m.device_id) == (6.59802, 4, 2)
    assert m.latency.count == TEST_SPLIT_TILES // 4


def test_crlf_and_indentation_read_the_same(perf_fixtures, crlf_indented):
    path = perf_fixtures / "perf_vision_batchsize_4_device_2.txt"
    plain = parse_perf_file(path).measurements[0]
    copied = parse_perf_text(crlf_indented(path.read_text()), path.name).measurements[0]
    assert (copied.fps, copied.batch_size, copied.latency) == (plain.fps, plain.batch_size, plain.latency)


def test_real_infer_label_files(real_transcripts):
    (m,) = parse_perf_file(real_transcripts / "benchmark_perf_vision_batchsize_1_device_0_deepmar.txt").measurements
    assert (m.fps, m.batch_size, m.device_id) == (326.049, 1, 0)


def _perf_text(inference: str) -> str:
    return ("[e2e] throughputRate: 6.0, latency: 1000\n[data read] throughputRate: 200, moduleLatency: 5\n"
            f"{inference}\n[postprocess] throughputRate: 6.0, moduleLatency: 160\n")


def test_missing_interface_throughput_is_named():
    with pytest.raises(PerfFileError, match="Interface throughputRate"):
        parse_perf_text(_perf_text("[inference] throughputRate: 6.2, moduleLatency: 160"),
                        "perf_vision_batchsize_1_device_0.txt")


def test_unexpected_unit_is_an_error():
    with pytest.raises(PerfFileError, match="unexpected unit 'ms'"):
        parse_perf_text(_perf_text("[inference] throughputRate: 6.2, Interface throughputRate: 6.4ms"),
                        "perf_vision_batchsize_1_device_0.txt")


def test_two_runs_in_one_file_are_refused():
    text = _perf_text("[inference] Interface throughputRate: 6.4") + "[inference] Interface throughputRate: 9.9\n"
    with pytest.raises(PerfFileError, match="second \\[inference\\] line"):
        parse_perf_text(text, "perf_vision_batchsize_1_device_0.txt")


def test_batch_size_needs_a_name_or_option():
    text = _perf_text("[inference] Interface throughputRate: 6.4")
    with pytest.raises(PerfFileError, match="--batch-size N"):
        parse_perf_text(text, "run.txt")
    assert parse_perf_text(text, "run.txt", batch_size=8).measurements[0].batch_size_source == "--batch-size"


def test_median_is_not_available_and_says_so(transcripts):
    (m,) = parse_perf_file(transcripts / "perf_vision_batchsize_1_device_0.txt", statistic="median").measurements
    assert m.basis == "mean"
    assert any("no median" in note for note in m.notes)


def test_pureinfer_perf_file(perf_fixtures):
    result = parse_perf_file(perf_fixtures / "PureInfer_perf_of_vnet_bs16_in_device_3.txt")
    (m,) = result.measurements
    assert result.file_format == PUREINFER_FORMAT
    assert (m.fps, m.batch_size, m.device_id, m.metric) == (6.47613, 16, 3, "ave_throughputRate")


def test_pureinfer_console_takes_bs_and_device_from_the_file_it_names(perf_fixtures):
    (m,) = parse_perf_file(perf_fixtures / "pureinfer_console_vnet.log").measurements
    assert (m.fps, m.batch_size, m.device_id) == (6.40193, 8, 1)
    assert m.batch_size_source.startswith("content")


def test_real_pureinfer_outputs(real_transcripts):
    (console,) = parse_perf_file(real_transcripts / "benchmark_pureinfer_console_efficientnet_b3_bs4.txt").measurements
    (perf,) = parse_perf_file(real_transcripts / "benchmark_pureinfer_perf_file_alexnet_bs4.txt").measurements
    assert (console.fps, console.batch_size, console.device_id) == (157.113, 4, 0)
    assert (perf.fps, perf.batch_size) == (974.27, 4)


def test_content_and_batch_size_option_must_agree(perf_fixtures):
    with pytest.raises(PerfFileError, match="content says bs8 .* --batch-size 4"):
        parse_perf_file(perf_fixtures / "pureinfer_console_vnet.log", batch_size=4)
