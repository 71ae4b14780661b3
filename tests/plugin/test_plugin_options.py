"""The gate's options: parsing at start-up, the ini twin, environment variables, and the shared_dir fixture."""

from __future__ import annotations

import argparse
import importlib.metadata
import json

import pytest

from vnet_accept.argtypes import choice, int_list, non_negative_float, positive_int
from vnet_accept.options import OPTIONS, OPTIONS_BY_DEST
from vnet_accept.report.record import REPORT_JSON

SETTINGS_PROBE = """
def test_probe(gate_options):
    print("PARITY_ATOL=%r BN_MODE=%r" % (gate_options.parity_atol, gate_options.bn_mode))
"""

SHARED_PROBE = """
def test_shared(shared_dir):
    print("SHARED_DIR=%s" % shared_dir)
"""


def _settings(pytester) -> dict:
    return json.loads((pytester.path / "out" / REPORT_JSON).read_text())["settings"]


# -- parsers (pure functions) --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [("0", 0.0), ("1e-4", 1e-4), (" 2.5", 2.5), ("inf", float("inf"))])
def test_non_negative_float_accepts_non_negative_numbers(text, value):
    assert non_negative_float(text) == value


@pytest.mark.parametrize(("text", "message"), [("abc", "expected a number, got 'abc'"), ("-1", ">= 0, got '-1'"),
                                               ("nan", ">= 0, got 'nan'"), ("", "expected a number")])
def test_non_negative_float_rejects_with_the_offending_text(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        non_negative_float(text)


def test_positive_int_accepts_one_and_rejects_zero_and_fractions():
    assert positive_int("16") == 16
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1, got '0'"):
        positive_int("0")
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer, got '1.5'"):
        positive_int("1.5")


def test_int_list_parses_comma_separated_values_and_rejects_duplicates_and_junk():
    assert int_list("1,4, 8") == (1, 4, 8)
    assert int_list("0") == (0,)  # device ids start at 0
    for bad in ("1,1", "1,x", "", ",", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad)):
            int_list(bad)


def test_choice_rejects_unknown_values_listing_the_choices():
    parse = choice("batch", "instance", "running")
    assert parse("instance") == "instance"
    with pytest.raises(argparse.ArgumentTypeError, match=r"invalid choice 'Running' \(choose from batch, instance"):
        parse("Running")


def test_every_option_is_prefixed_documented_and_its_default_parses_back():
    dests = [o.dest for o in OPTIONS]
    assert len(dests) == len(set(dests)) and set(OPTIONS_BY_DEST) == set(dests)
    for opt in OPTIONS:
        assert opt.flag.startswith("--") and opt.help and opt.metavar, opt.flag
        assert opt.ini == opt.dest == opt.flag[2:].replace("-", "_")
        text = opt.help_text()
        assert text.count("default:") == 1, text  # said once: by the help itself, or appended
        assert "(default: (" not in text and "(default: [" not in text, text  # a list as it is typed: 1,4,8,16,32
        if opt.default is not None and opt.type is not str:
            text = ",".join(map(str, opt.default)) if isinstance(opt.default, tuple) else str(opt.default)
            assert opt.type(text) == opt.default, opt.flag


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    try:
        importlib.metadata.distribution("vnet-accept")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("vnet-accept is not installed (pip install -e .); the root conftest loads the plugin instead")
    plugins = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert plugins.get("vnet_accept.plugin") == "vnet_accept.plugin"


# -- command line ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--parity-atol", "abc"], "*argument --parity-atol: expected a number, got 'abc'*"),
    (["--parity-atol", "-1"], "*argument --parity-atol: expected a number >= 0, got '-1'*"),
    (["--bn-mode", "bogus"], "*argument --bn-mode: invalid choice 'bogus' (choose from batch, instance, running)*"),
])
def test_a_bad_command_line_value_fails_at_startup_with_a_clear_message(gate_pytester, run_inner, args, message):
    gate_pytester.makepyfile(test_never="def test_never():\n    raise AssertionError('must not run')\n")
    result = run_inner(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "must not run" not in result.stdout.str()


def test_help_shows_the_option_group_with_metavars_and_defaults(run_inner):
    result = run_inner("--help")
    result.stdout.fnmatch_lines([
        "VNet acceptance gate:",
        "*--shared-dir=DIR*",
        "*--parity-atol=ATOL*",
    ])
    text = " ".join(result.stdout.str().split())  # argparse wraps help text
    assert "(default: 0.0001)" in text
    assert "[env VNET_ACCEPT_SHARED]" in text


# -- ini twin ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ini_file", ["pytest.ini", "tox.ini"])
def test_the_ini_setting_is_used_when_no_flag_is_given(gate_pytester, run_inner, ini_file):
    gate_pytester.path.joinpath(ini_file).write_text("[pytest]\nparity_atol = 0.5\nbn_mode = instance\n")
    gate_pytester.makepyfile(test_probe=SETTINGS_PROBE)
    result = run_inner("-s", "--gate-report", "out")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PARITY_ATOL=0.5 BN_MODE='instance'*"])
    settings = _settings(gate_pytester)
    assert (settings["parity_atol"], settings["bn_mode"]) == (0.5, "instance")
    assert settings["invariance_atol"] == 1e-5  # untouched options keep their default


def test_the_command_line_flag_beats_the_ini_setting(gate_pytester, run_inner):
    gate_pytester.makeini("[pytest]\nparity_atol = 0.5\n")
    gate_pytester.makepyfile(test_probe=SETTINGS_PROBE)
    result = run_inner("-s", "--parity-atol", "0.25")
    result.stdout.fnmatch_lines(["*PARITY_ATOL=0.25*"])


@pytest.mark.parametrize(("line", "message"), [
    ("parity_atol = abc", "*ini setting parity_atol: expected a number, got 'abc'*"),
    ("bn_mode = Running", "*ini setting bn_mode: invalid choice 'Running'*"),
])
def test_a_bad_ini_value_fails_at_startup_naming_the_setting(gate_pytester, run_inner, line, message):
    gate_pytester.makeini(f"[pytest]\n{line}\n")
    gate_pytester.makepyfile(test_never="def test_never():\n    raise AssertionError('must not run')\n")
    result = run_inner()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "must not run" not in result.stdout.str()


# -- environment and shared_dir ------------------------------------------------------------------------------------

def test_vnet_accept_shared_is_honoured_for_shared_dir(gate_pytester, run_inner, monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("VNET_ACCEPT_SHARED", str(shared))
    gate_pytester.makepyfile(test_probe=SHARED_PROBE)
    result = run_inner("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*SHARED_DIR={shared}*"])


def test_the_shared_dir_flag_beats_the_environment_variable(gate_pytester, run_inner, monkeypatch, tmp_path):
    (tmp_path / "from-env").mkdir()
    (tmp_path / "from-flag").mkdir()
    monkeypatch.setenv("VNET_ACCEPT_SHARED", str(tmp_path / "from-env"))
    gate_pytester.makepyfile(test_probe=SHARED_PROBE)
    result = run_inner("-s", "--shared-dir", str(tmp_path / "from-flag"))
    result.stdout.fnmatch_lines([f"*SHARED_DIR={tmp_path / 'from-flag'}*"])


def test_a_missing_shared_dir_skips_naming_the_flag_the_variable_and_the_path(gate_pytester, run_inner, monkeypatch,
                                                                               tmp_path):
    missing = tmp_path / "does-not-exist"
    monkeypatch.setenv("VNET_ACCEPT_SHARED", str(missing))
    gate_pytester.makepyfile(test_probe=SHARED_PROBE)
    result = run_inner("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED*--shared-dir / VNET_ACCEPT_SHARED points to {missing}, which does not "
                                 "exist*"])


def test_an_absent_shared_dir_skips_saying_how_to_provide_it(gate_pytester, run_inner):
    gate_pytester.makepyfile(test_probe=SHARED_PROBE)
    result = run_inner("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*pass --shared-dir DIR or set VNET_ACCEPT_SHARED=DIR*"])
