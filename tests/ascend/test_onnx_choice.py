"""One ONNX, never switched silently: the OMs of ``--npu-results`` are compared with ``--onnx`` or the folder's single
``*.onnx``; two, or one that differs from ``--onnx``, stop the session before any test runs (plain pytest here; the
gate's exit 2 is in tests/gate/test_port_under_test.py)."""

from __future__ import annotations

import pytest

from vnet_accept.ascend.onnx_choice import onnx_for_oms
from vnet_accept.errors import UsageError

FAST = ("-p", "no:cacheprovider", "-p", "no:unraisableexception")


@pytest.fixture
def folder(tmp_path):
    results = tmp_path / "npu-results"
    results.mkdir()
    return results


def test_the_folders_single_onnx_or_the_given_one_is_used(folder, tmp_path):
    assert onnx_for_oms(folder, None) is None
    (folder / "vnet.onnx").write_bytes(b"the OMs' ONNX")
    assert onnx_for_oms(folder, None) == folder / "vnet.onnx"
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"the OMs' ONNX")  # the same bytes under another name
    assert onnx_for_oms(folder, mine) == mine
    assert onnx_for_oms(None, mine) == mine


def test_two_onnx_files_or_one_that_is_not_onnx_are_usage_errors_naming_both(folder, tmp_path):
    (folder / "vnet.onnx").write_bytes(b"one")
    (folder / "vnet_new.onnx").write_bytes(b"two")
    with pytest.raises(UsageError, match=r"2 ONNX files, .*vnet.onnx and .*vnet_new.onnx; the OMs were converted "
                                         r"from one ONNX - keep only the one the OMs were converted from"):
        onnx_for_oms(folder, None)
    (folder / "vnet_new.onnx").unlink()
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"different")
    with pytest.raises(UsageError) as info:
        onnx_for_oms(folder, mine)
    assert f"holds {folder / 'vnet.onnx'} (sha256 " in str(info.value) and f"which is not --onnx {mine}" in str(
        info.value)


def test_plain_pytest_stops_at_start_up_the_same_way(pytester, folder):
    (folder / "a.onnx").write_bytes(b"a")
    (folder / "b.onnx").write_bytes(b"b")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("-m", "npu", *FAST, "--npu-results", str(folder))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--npu-results *npu-results: 2 ONNX files, *a.onnx and *b.onnx*"])
    assert "test_x" not in result.stdout.str()  # stopped before collecting, let alone running
