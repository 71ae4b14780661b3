"""``vnet-accept perf``: the table, the statements, the exit status, and one-line errors for user mistakes."""

from __future__ import annotations

import json

import pytest

from vnet_accept.cli import main


def _port_files(transcripts):
    return sorted(str(p) for p in (*transcripts.glob("*.txt"), *transcripts.glob("*.log")))


def _row(out: str, bs: int) -> list[str]:
    return next(line for line in out.splitlines() if line.split()[:1] == [str(bs)]).split()


def test_port_transcripts(transcripts, capsys):
    assert main(["perf", *_port_files(transcripts)]) == 0
    out = capsys.readouterr().out
    # per batch size: chip fps (basis), card fps, T4 fps (basis), ratio, verdict
    assert _row(out, 1) == ["1", "6.10496", "(mean)", "24.42", "10.31899", "(median)", "2.37×", "PASS"]
    assert _row(out, 16) == ["16", "6.49396", "(mean)", "25.98", "10.15731", "(mean)", "2.56×", "PASS"]
    assert _row(out, 32)[3:5] == ["25.41", "9.44"]
    assert "card fps = per-chip fps × 4" in out
    assert "INCONSISTENT T4 basis" in out and "bs1 10.31899 fps from the median" in out
    assert "PerfStatus:PERFECT" in out
    assert "postprocess_310_bs1.txt: post-processing accuracy line" in out


def test_statistic_mean_removes_the_inconsistency(transcripts, capsys):
    assert main(["perf", "--statistic", "mean", *_port_files(transcripts)]) == 0
    out = capsys.readouterr().out
    assert _row(out, 1)[4:6] == ["10.30208", "(mean)"]
    assert "INCONSISTENT" not in out


def test_json_output(transcripts, tmp_path, capsys):
    out_file = tmp_path / "perf.json"
    assert main(["perf", "--json", str(out_file), *_port_files(transcripts)]) == 0
    data = json.loads(out_file.read_text())
    bs1 = next(v for v in data["verdicts"] if v["batch_size"] == 1)
    assert (bs1["card_fps"], bs1["t4_fps"], bs1["t4_basis"], bs1["verdict"]) == (
        pytest.approx(24.41984), pytest.approx(10.31899, abs=5e-6), "median", "PASS")
    assert data["placement"]["perf_status"] == "PERFECT"
    assert data["not_read"][0]["kind"] == "accuracy"
    assert all("validity" in m for m in data["measurements"])


def test_failing_batch_size_exits_1(tmp_path, capsys):
    slow = tmp_path / "perf_vision_batchsize_1_device_0.txt"
    slow.write_text("[e2e] throughputRate: 2.0, latency: 536000\n[inference] Interface throughputRate: 2.5\n")
    assert main(["perf", str(slow)]) == 1
    out = capsys.readouterr().out
    assert "FAIL bs1: card 10.00 fps (4 × 2.5 fps per chip, mean) <= T4 10.31899 fps" in out
    assert "the reference port's T4 table" in out


def test_310p_rule_applies_for_a_310p(perf_fixtures, capsys):
    assert main(["perf", "--soc-version", "Ascend310P3", str(perf_fixtures / "perf_bs1_summary.json")]) == 1
    out = capsys.readouterr().out
    assert "card fps = per-chip fps × 1" in out
    assert "FAIL 310P rule bs1" in out  # 24.04 fps < 1.2 × the 310 card's 24.42


def test_chips_per_card_override(perf_fixtures, capsys):
    main(["perf", "--chips-per-card", "2", str(perf_fixtures / "perf_vision_batchsize_4_device_2.txt")])
    assert _row(capsys.readouterr().out, 4)[3] == "13.20"


def test_t4_option_and_defaults(transcripts, perf_fixtures, capsys):
    npu = str(transcripts / "perf_vision_batchsize_16_device_1.txt")
    assert main(["perf", npu, "--t4", str(perf_fixtures / "trtexec8_t4_vnet_bs16.log")]) == 0
    assert _row(capsys.readouterr().out, 16)[4] == "10.21372"
    assert main(["perf", npu, str(perf_fixtures / "trtexec8_t4_vnet_bs16.log"), "--t4", "defaults"]) == 0
    assert _row(capsys.readouterr().out, 16)[4] == "10.15731"


def test_questionable_t4_threshold_is_flagged_next_to_its_verdict(transcripts, perf_fixtures, capsys):
    # nested_unet at 16x3x96x96 runs at 121 fps: judged against it, the VNet card fails.
    assert main(["perf", str(transcripts / "perf_vision_batchsize_16_device_1.txt"),
                 str(perf_fixtures / "trtexec7_t4_bs16_wrong_model.log")]) == 1
    out = capsys.readouterr().out
    verdict = out.index("FAIL bs16:")
    assert out[verdict:].splitlines()[1].startswith(
        "    WARNING (T4 threshold bs16, trtexec7_t4_bs16_wrong_model.log): the log's input "
        "actual_input_1:16x3x96x96 is not VNet's")


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/perf.txt"], "no performance figure in the files given: /nonexistent/perf.txt: no such file"),
    (["{legacy}", "--t4", "{legacy}"], "not a trtexec log"),
    (["{legacy}", "--t4", "defaults", "{t4}"], "either trtexec logs or the single word 'defaults'"),
    (["{legacy}", "/nonexistent/x.log", "--strict"], "no such file; check the path (--strict)"),
    (["{legacy}", "--soc-version", "Ascend910B4"], "pass --chips-per-card N"),
])
def test_usage_errors_are_one_line(perf_fixtures, capsys, args, message):
    files = {"legacy": str(perf_fixtures / "perf_vision_batchsize_4_device_2.txt"),
             "t4": str(perf_fixtures / "trtexec8_t4_vnet_bs16.log")}
    assert main(["perf", *(a.format(**files) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vnet-accept perf: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1



def test_310p_rule_against_given_310_figures(perf_fixtures, tmp_path, capsys):
    slow_310 = tmp_path / "perf_vision_batchsize_1_device_0.txt"
    slow_310.write_text("[e2e] throughputRate: 2.0, latency: 536000\n[inference] Interface throughputRate: 2.0\n")
    args = ["perf", "--soc-version", "Ascend310P3", str(perf_fixtures / "perf_bs1_summary.json")]
    assert main([*args, "--ref-310", str(slow_310)]) == 0
    out = capsys.readouterr().out
    # 1.2 × the 310 card (4 × 2.0) = 9.6 and 1.6 × the T4 10.31899 = 16.51: the 310P card's 24.04 passes both.
    assert "PASS 310P rule bs1: card 24.04 fps vs 1.2 × 310 card 8.00 = 9.60 and 1.6 × T4 10.31899" in out


@pytest.mark.parametrize("claimed, status", [("PERFECT", 0), ("OK", 1)])
def test_modelzoo_level_claim(transcripts, tmp_path, capsys, claimed, status):
    level = tmp_path / "modelzoo_level.txt"
    level.write_bytes(f"FuncStatus:OK\r\nPrecisionStatus:POK\r\nPerfStatus:{claimed}\r\n".encode())
    assert main(["perf", "--modelzoo-level", str(level), *_port_files(transcripts)]) == status
    verdict = "PASS" if status == 0 else "FAIL"
    assert f"{verdict} PerfStatus: claimed {claimed}, measured PERFECT (Benchmark tier)" in capsys.readouterr().out


def test_modelzoo_level_given_as_a_file_is_pointed_to_the_option(tmp_path, perf_fixtures, capsys):
    level = tmp_path / "modelzoo_level.txt"
    level.write_text("PerfStatus:OK\n")
    main(["perf", str(level), str(perf_fixtures / "perf_vision_batchsize_4_device_2.txt")])
    assert "pass it with --modelzoo-level" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [("PerfStatus:GREAT\n", "PerfStatus:GREAT is not one of PERFECT, OK"),
                                           ("PerfStatus OK\n", "is not 'Key:Value'")])
def test_bad_modelzoo_level(tmp_path, perf_fixtures, capsys, text, message):
    level = tmp_path / "modelzoo_level.txt"
    level.write_text(text)
    assert main(["perf", "--modelzoo-level", str(level), str(perf_fixtures / "trtexec8_t4_vnet_bs16.log")]) == 2
    assert message in capsys.readouterr().err
