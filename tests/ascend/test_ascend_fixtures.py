"""The NPU fixtures on a machine without CANN: every hardware need becomes a skip naming what is missing and
how to provide it; option values are checked at start-up."""

from __future__ import annotations

import pytest

from vnet_accept.errors import UsageError
from vnet_accept.options import OPTIONS
from vnet_accept.plugin.ascend_fixtures import npu_settings_from, parse_path_list

DEFAULTS = {opt.dest: opt.default for opt in OPTIONS}
#: Inner sessions skip the unraisable-exception plugin: its gc.collect() passes over the torch-sized heap of this
#: process cost seconds per run and test nothing here.
FAST = ("-p", "no:cacheprovider", "-p", "no:unraisableexception")

NPU_TESTS = """
import pytest

pytestmark = pytest.mark.npu

def test_soc(npu_soc_version):
    assert npu_soc_version

def test_card(npu_card):
    print("CHIPS", npu_card.chips_given, npu_card.soc_version)

def test_t4(t4_thresholds):
    print("T4", {bs: (round(t.fps, 5), t.basis) for bs, t in sorted(t4_thresholds.items())})
"""


def test_without_cann_every_hardware_test_skips_with_its_reason(pytester, empty_path):
    pytester.makepyfile(test_npu=NPU_TESTS)
    result = pytester.runpytest("-m", "npu", "-rs", "-s", *FAST)
    result.assert_outcomes(passed=1, skipped=2)  # only the T4 table needs nothing
    result.stdout.fnmatch_lines(["*SoC version unknown: npu-smi not found*--soc-version*"])
    result.stdout.fnmatch_lines(["*T4 {1: (10.31899, 'median'), 4: (10.95101, 'mean')*"])


def test_options_feed_the_fixtures(pytester, empty_path, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    t4 = tmp_path / "trtexec_t4_bs16.log"
    t4.write_text("[I] GPU Compute Time: min = 1500 ms, max = 1700 ms, mean = 1600 ms, median = 1580 ms\n")
    pytester.makepyfile(test_npu=NPU_TESTS)
    result = pytester.runpytest("-m", "npu", "-s", *FAST, "--soc-version", "Ascend310P3",
                                "--npu-results", str(results), "--t4-logs", str(t4), "--perf-statistic", "median")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*CHIPS None Ascend310P3*", "*T4 {16: (10.12658, 'median')}*"])


def test_bad_option_values_stop_the_session(pytester, tmp_path):
    pytester.makepyfile(test_npu=NPU_TESTS)
    result = pytester.runpytest("-m", "npu", *FAST, "--npu-results", str(tmp_path / "absent"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--npu-results *absent: no such folder*"])


def test_settings_validation(tmp_path):
    settings = npu_settings_from(DEFAULTS)
    assert (settings.batch_sizes, settings.device_ids, settings.npu_tool, settings.statistic) == (
        (1, 4, 8, 16, 32), (0,), "auto", "port")
    with pytest.raises(UsageError, match="--batch-sizes 0,4: give batch sizes >= 1"):
        npu_settings_from({**DEFAULTS, "batch_sizes": (0, 4)})
    with pytest.raises(UsageError, match="--t4-logs: no such file"):
        npu_settings_from({**DEFAULTS, "t4_logs": str(tmp_path / "t4.log")})
    assert parse_path_list(" a.log, ,b.log ") == (tmp_path.__class__("a.log"), tmp_path.__class__("b.log"))


def test_the_gate_npu_criteria_skip_naming_every_missing_piece(inner_gate, empty_path):
    """vnet_accept/checks/test_npu.py on a machine without CANN and without --npu-results: every test skips, and
    the reason names atc, the inference tool, the SoC and the --npu-results alternative."""
    run = inner_gate("--batch-sizes", "1,16")
    assert run.counts() == {"skipped": 15}  # 13 + om.tiles_in_place at bs1 and bs16
    assert all(text == run.texts[next(iter(run.texts))] for text in run.texts.values())
    assert run.has_line("*no --npu-results DIR and the OM cannot run here: atc not on PATH; no NPU inference tool "
                        "(ais_bench not importable*; SoC unknown (npu-smi not on PATH, no --soc-version). Install "
                        "CANN*set_env.sh*or pass --npu-results DIR*")


def test_om_judging_options_are_checked(tmp_path):
    settings = npu_settings_from(DEFAULTS)
    assert (settings.parity_tiles, settings.om_max_flip_fraction, settings.om_invariance_max_flip_fraction,
            settings.bn_semantics_margin) == (8, 1e-3, 1e-5, 2.0)
    with pytest.raises(UsageError, match="--bn-semantics-margin 1: the runner-up must be farther"):
        npu_settings_from({**DEFAULTS, "bn_semantics_margin": 1.0})
    assert npu_settings_from({**DEFAULTS, "om_max_flip_fraction": 0.0}).om_max_flip_fraction == 0.0
