"""ATC: the exact command, the OM's varying name, success = exit 0 AND an OM, failures with codes and log tail,
time-outs, and the OM cache keyed by the ONNX content and the arguments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vnet_accept.ascend.atc import (
    AtcError,
    AtcRequest,
    atc_command,
    build_om_cached,
    find_om,
    om_candidates,
    parse_atc_log,
    run_atc,
)
from vnet_accept.ascend.process import ToolTimeout
from vnet_accept.ascend.tools import find_atc
from vnet_accept.cache import ArtifactCache


@pytest.fixture
def onnx(tmp_path: Path) -> Path:
    path = tmp_path / "vnet.onnx"
    path.write_bytes(b"onnx model bytes")
    return path


def _request(onnx: Path, tmp_path: Path, batch_size: int = 1, soc: str = "Ascend310") -> AtcRequest:
    return AtcRequest(onnx, tmp_path / "om" / f"vnet_bs{batch_size}", batch_size, soc)


def test_command_follows_spec(onnx, tmp_path):
    request = AtcRequest(onnx, tmp_path / "vnet_bs16", 16, "Ascend310P3", extra_args=("--precision_mode=force_fp32",))
    assert atc_command(request) == [
        "atc", f"--model={onnx}", "--framework=5", f"--output={tmp_path / 'vnet_bs16'}", "--input_format=NCDHW",
        "--input_shape=actual_input_1:16,1,64,80,80", "--log=error", "--soc_version=Ascend310P3",
        "--precision_mode=force_fp32"]


def test_request_validation(onnx, tmp_path):
    with pytest.raises(ValueError, match="batch size"):
        AtcRequest(onnx, tmp_path / "x", 0, "Ascend310")
    with pytest.raises(ValueError, match="soc_version"):
        AtcRequest(onnx, tmp_path / "x", 1, "")


def test_om_names_vary_by_version(tmp_path):
    output = tmp_path / "vnet_bs1"
    assert [p.name for p in om_candidates(output)] == ["vnet_bs1.om", "vnet_bs1_linux_x86_64.om",
                                                       "vnet_bs1_linux_aarch64.om"]
    assert find_om(output) is None
    (tmp_path / "vnet_bs1.om").write_bytes(b"")  # an empty file is not an OM
    assert find_om(output) is None
    older, newer = tmp_path / "vnet_bs1.om", tmp_path / "vnet_bs1_linux_aarch64.om"
    older.write_bytes(b"old")
    newer.write_bytes(b"new")
    os.utime(older, ns=(1, 1))
    assert find_om(output) == newer


@pytest.mark.parametrize("name, codes, success", [
    ("atc_failed_E19010_no_parser_onnx_convx.txt", ("E19010",), False),
    ("atc_failed_EZ3003_no_ops_kernel.txt", ("EZ3003",), False),
    ("atc_failed_E40000_atlas200dk_cann20.1.txt", ("E40000",), False),
    ("atc_error_E16005_domain_version_line.txt", ("E16005",), False),
    ("atc_success_with_W11001_warnings_icnet.txt", (), True),
])
def test_real_atc_logs(real_transcripts, name, codes, success):
    log = parse_atc_log((real_transcripts / name).read_text())
    assert (log.error_codes, log.success_line) == (codes, success)


def test_warnings_are_kept_apart(real_transcripts):
    log = parse_atc_log((real_transcripts / "atc_success_with_W11001_warnings_luggage_checker.txt").read_text())
    assert log.warning_codes == ("W11001",) and len(log.warnings) == 4 and not log.errors


def test_success_needs_exit_zero_and_an_om(stand_in, onnx, tmp_path, ascend_fixtures):
    atc = stand_in("atc", output=ascend_fixtures / "atc_success_vnet_bs1.txt", om_suffix=".om")
    request = _request(onnx, tmp_path)
    result = run_atc(request, find_atc(atc.path), timeout_s=30, log_path=tmp_path / "atc.log")
    assert result.om_path == tmp_path / "om" / "vnet_bs1.om" and result.log.success_line
    assert atc.calls == [atc_command(request, ())]  # the stand-in saw exactly the SPEC flags


def test_versioned_om_name_is_found(stand_in, onnx, tmp_path):
    atc = stand_in("atc", output="ATC run success, welcome to the next use.\n", om_suffix="_linux_aarch64.om")
    assert run_atc(_request(onnx, tmp_path), find_atc(atc.path)).om_path.name == "vnet_bs1_linux_aarch64.om"


def test_exit_zero_without_an_om_fails(stand_in, onnx, tmp_path):
    atc = stand_in("atc", output="ATC run success, welcome to the next use.\n")
    with pytest.raises(AtcError) as info:
        run_atc(_request(onnx, tmp_path), find_atc(atc.path))
    first = str(info.value).splitlines()[0]
    assert first.startswith("ATC failed for bs1 (exit status 0 but no OM written; looked for vnet_bs1.om")
    assert info.value.returncode == 0


def test_failure_carries_status_codes_and_tail(stand_in, onnx, tmp_path, real_transcripts):
    atc = stand_in("atc", output=real_transcripts / "atc_failed_E19010_no_parser_onnx_convx.txt", exit_code=255)
    with pytest.raises(AtcError) as info:
        run_atc(_request(onnx, tmp_path, batch_size=16), find_atc(atc.path))
    error = info.value
    assert (error.returncode, error.error_codes) == (255, ("E19010",))
    assert str(error).splitlines()[0] == (
        "ATC failed for bs16 (exit status 255; E19010): E19010 (operator or opset with no parser): No parser is "
        "registered for Op [Conv_52, optype [ai.onnx::11::Convx]].")
    assert "ATC model parse ret fail" in error.output_tail and "--soc_version=Ascend310" in str(error)


def test_own_recorded_failure(stand_in, onnx, tmp_path, ascend_fixtures):
    atc = stand_in("atc", output=ascend_fixtures / "atc_failed_E10001_soc_version.txt", exit_code=1)
    with pytest.raises(AtcError, match=r"^ATC failed for bs1 \(exit status 1; E10001\): E10001 \(bad parameter"):
        run_atc(_request(onnx, tmp_path, soc="Ascend999"), find_atc(atc.path))


def test_stale_om_cannot_pass_for_a_new_one(stand_in, onnx, tmp_path):
    request = _request(onnx, tmp_path)
    request.output.parent.mkdir(parents=True)
    stale = request.output.with_name("vnet_bs1.om")
    stale.write_bytes(b"from yesterday")
    atc = stand_in("atc", output="garbage \x00\x01 output\n", exit_code=2)
    with pytest.raises(AtcError, match=r"exit status 2\)"):
        run_atc(request, find_atc(atc.path))
    assert not stale.exists()


def test_time_out(stand_in, onnx, tmp_path):
    atc = stand_in("atc", output="ATC start working now, please wait for a moment.\n", sleep=60)
    with pytest.raises(ToolTimeout, match="atc timed out after 0.5 s"):
        run_atc(_request(onnx, tmp_path), find_atc(atc.path), timeout_s=0.5)


def test_missing_onnx(tmp_path, stand_in):
    with pytest.raises(Exception, match="does not exist; export the ONNX first"):
        run_atc(_request(tmp_path / "absent.onnx", tmp_path), find_atc(stand_in("atc").path))


def test_om_cache_builds_once_per_content_and_arguments(stand_in, onnx, tmp_path):
    atc = find_atc(stand_in("atc", output="ATC run success, welcome to the next use.\n", om_suffix=".om").path)
    calls = Path(atc.argv[0]).with_suffix(".calls")
    cache = ArtifactCache(tmp_path / "cache")
    first = build_om_cached(cache, onnx, 1, "Ascend310", atc)
    again = build_om_cached(cache, onnx, 1, "Ascend310", atc)
    assert (first.cached, again.cached, first.om_path) == (False, True, again.om_path)
    assert first.om_path.read_bytes() == b"OM" and first.om_path.name == "vnet_bs1.om"
    assert len(calls.read_text().splitlines()) == 1
    other_bs = build_om_cached(cache, onnx, 16, "Ascend310", atc)
    onnx.write_bytes(b"retrained model bytes")
    other_content = build_om_cached(cache, onnx, 1, "Ascend310", atc)
    assert len({first.entry_dir, other_bs.entry_dir, other_content.entry_dir}) == 3
    assert len(calls.read_text().splitlines()) == 3


def test_failed_build_leaves_no_cache_entry(stand_in, onnx, tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    failing = find_atc(stand_in("atc", output="E19010: No parser\n", exit_code=1).path)
    for _ in range(2):  # the second attempt runs ATC again instead of finding a half entry
        with pytest.raises(AtcError):
            build_om_cached(cache, onnx, 1, "Ascend310", failing)
    assert len(Path(failing.argv[0]).with_suffix(".calls").read_text().splitlines()) == 2
    assert not [p for p in (tmp_path / "cache" / "om").iterdir() if p.is_dir()]
