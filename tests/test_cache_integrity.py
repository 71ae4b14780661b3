"""Issue 12: the artifact cache verifies what it hands out, and lives in a private per-user folder."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from vnet_accept.cache import (
    ENTRY_FILE,
    ArtifactCache,
    CacheDirError,
    _verified,
    default_cache_root,
    prepare_cache_root,
)


def _build(calls: list[str], payload: bytes = b"\x08\x07onnx-bytes" * 100):
    def build(directory: Path) -> None:
        calls.append("built")
        (directory / "vnet.onnx").write_bytes(payload)
        (directory / "sub").mkdir()
        (directory / "sub" / "0.bin").write_bytes(b"tile")

    return build


def test_entry_json_holds_the_sha256_of_every_file(tmp_path):
    entry = ArtifactCache(tmp_path / "c").get_or_build("onnx", {"x": 1}, _build([]))
    files = json.loads((entry / ENTRY_FILE).read_text())["files"]
    assert set(files) == {"vnet.onnx", "sub/0.bin"} and all(len(v) == 64 for v in files.values())


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove", "add"])
def test_a_damaged_entry_is_rebuilt_with_a_warning_naming_entry_and_file(tmp_path, damage):
    cache, calls = ArtifactCache(tmp_path / "c"), []
    entry = cache.get_or_build("onnx", {"x": 1}, _build(calls))
    onnx = entry / "vnet.onnx"
    if damage == "flip":
        data = bytearray(onnx.read_bytes())
        data[10] ^= 0x01  # one bit; size and name unchanged
        onnx.write_bytes(bytes(data))
    elif damage == "truncate":
        onnx.write_bytes(onnx.read_bytes()[:5])
    elif damage == "remove":
        onnx.unlink()
    else:
        (entry / "planted.onnx").write_bytes(b"not from the build")
    culprit = "planted.onnx" if damage == "add" else "vnet.onnx"
    with pytest.warns(UserWarning, match=rf"cache entry {entry} \(onnx\).*{culprit}.*rebuilding it"):
        again = cache.get_or_build("onnx", {"x": 1}, _build(calls))
    assert again == entry and calls == ["built", "built"]
    assert (entry / "vnet.onnx").read_bytes() == b"\x08\x07onnx-bytes" * 100 and not (entry / "planted.onnx").exists()


def test_a_fresh_process_verifies_the_content_not_just_the_stat(tmp_path):
    cache, calls = ArtifactCache(tmp_path / "c"), []
    entry = cache.get_or_build("onnx", {"x": 1}, _build(calls))
    onnx = entry / "vnet.onnx"
    st = onnx.stat()
    data = bytearray(onnx.read_bytes())
    data[3] ^= 0x80
    onnx.write_bytes(bytes(data))
    os.utime(onnx, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same size and mtime
    _verified.clear()  # as a new process sees it
    with pytest.warns(UserWarning, match="vnet.onnx differs from its sha256"):
        cache.get_or_build("onnx", {"x": 1}, _build(calls))
    assert len(calls) == 2


def test_an_entry_of_an_older_version_without_checksums_is_rebuilt(tmp_path):
    cache, calls = ArtifactCache(tmp_path / "c"), []
    entry = cache.get_or_build("onnx", {"x": 1}, _build(calls))
    meta = json.loads((entry / ENTRY_FILE).read_text())
    del meta["files"]
    (entry / ENTRY_FILE).write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="no file checksums"):
        cache.get_or_build("onnx", {"x": 1}, _build(calls))
    assert len(calls) == 2


def test_the_default_folder_is_per_user_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "vnet-accept"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_root() == tmp_path / "home" / ".cache" / "vnet-accept"
    root = prepare_cache_root(default_cache_root())
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert not str(root).startswith("/tmp/vnet-accept")


def test_a_cache_folder_owned_by_someone_else_is_refused(tmp_path):
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(theirs, 65534, 65534)
    else:
        theirs = Path("/")
    with pytest.raises(CacheDirError, match=rf"cache folder {theirs} belongs to .*not to you.*--vnet-cache-dir"):
        prepare_cache_root(theirs)
    with pytest.raises(CacheDirError):
        ArtifactCache(theirs).get_or_build("onnx", {"x": 1}, _build([]))
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        prepare_cache_root(tmp_path / "file")


def test_without_pytests_cache_plugin_the_fixture_uses_the_per_user_folder(pytester, tmp_path, monkeypatch):
    monkeypatch.delenv("VNET_ACCEPT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    pytester.makepyfile("""
        def test_where(artifact_cache):
            print("ROOT", artifact_cache.root)
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*ROOT {tmp_path / 'xdg' / 'vnet-accept'}"])
    assert stat.S_IMODE((tmp_path / "xdg" / "vnet-accept").stat().st_mode) == 0o700
