"""Unit tests for vnet_accept.io_utils: atomic writes, the tolerant JSON writer and sha256 helpers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.io_utils import (
    atomic_output,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    available_cpus,
    claim_cpu_share,
    sha256_bytes,
    sha256_file,
)


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_atomic_output_replaces_the_file_when_the_block_succeeds(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_output(target) as fh:
        fh.write(b"new contents")
        assert target.read_bytes() == b"old"  # nothing visible until the block ends
    assert target.read_bytes() == b"new contents"
    assert _siblings(target) == ["out.bin"]


def test_an_exception_inside_atomic_output_leaves_the_original_untouched_and_no_temp_file(tmp_path):
    target = tmp_path / "gate-report.json"
    target.write_text('{"good": true}')
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_output(target) as fh:
            fh.write(b'{"trunc')
            raise RuntimeError("disk on fire")
    assert target.read_text() == '{"good": true}'
    assert _siblings(target) == ["gate-report.json"]


def test_an_exception_inside_atomic_output_creates_no_file_when_none_existed(tmp_path):
    target = tmp_path / "sub" / "new.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as fh:
            fh.write(b"partial")
            raise KeyboardInterrupt
    assert not target.exists()
    assert _siblings(target) == []


def test_atomic_output_creates_missing_parent_directories_and_supports_text_mode(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    with atomic_output(target, "w") as fh:
        fh.write("héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"


def test_atomic_write_helpers_write_and_return_the_path(tmp_path):
    assert atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01") == tmp_path / "b.bin"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert atomic_write_text(str(tmp_path / "t.txt"), "Δ lung") == tmp_path / "t.txt"
    assert (tmp_path / "t.txt").read_bytes() == "Δ lung".encode()


def test_json_writer_handles_numpy_scalars_arrays_paths_and_sets(tmp_path):
    obj = {
        "f32": np.float32(0.5),
        "f64": np.float64(0.25),
        "i64": np.int64(7),
        "flag": np.bool_(True),
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "path": tmp_path / "model.onnx",
        "uids": {"b", "a"},
        "nested": [{"v": np.float16(1.5)}],
    }
    path = atomic_write_json(tmp_path / "r.json", obj)
    text = path.read_text()
    assert text.endswith("\n")
    data = json.loads(text)
    assert data == {"f32": 0.5, "f64": 0.25, "i64": 7, "flag": True, "array": [[0, 1, 2], [3, 4, 5]],
                    "path": str(tmp_path / "model.onnx"), "uids": ["a", "b"], "nested": [{"v": 1.5}]}
    assert isinstance(data["i64"], int) and isinstance(data["f32"], float) and data["flag"] is True


def test_json_writer_refuses_unknown_objects_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("{}\n")
    with pytest.raises(TypeError, match="object"):
        atomic_write_json(target, {"x": object()})
    assert target.read_text() == "{}\n"
    assert _siblings(target) == ["r.json"]


def test_json_writer_keeps_key_order(tmp_path):
    atomic_write_json(tmp_path / "o.json", {"schema": 1, "b": 2, "a": 3})
    assert list(json.loads((tmp_path / "o.json").read_text())) == ["schema", "b", "a"]


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, (1 << 20), (5 << 19) + 3])  # around the 1 MiB chunk
def test_sha256_file_agrees_with_hashlib(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size=size, dtype=np.uint8).tobytes()
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == sha256_bytes(data)


def test_sha256_bytes_agrees_with_hashlib_and_known_vector():
    assert sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_bytes(b"") == hashlib.sha256(b"").hexdigest()


def test_sha256_file_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "nope.bin")


def test_available_cpus_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {2, 5}, raising=False)
    assert available_cpus() == 2
    monkeypatch.delattr("os.sched_getaffinity", raising=False)  # macOS, Windows: the machine's CPUs
    assert available_cpus() == 8


@pytest.mark.parametrize(("cpus", "index", "count", "kept"), [
    ([0, 1], 0, 2, (0,)), ([0, 1], 1, 2, (1,)),                       # two workers on two cores: one core each
    ([0, 1, 2, 3, 4, 5, 6, 7], 1, 2, (1, 3, 5, 7)),                  # half of eight
    ([0, 1], 2, 4, (0,)),                                             # more workers than CPUs: at least one
    ([4, 9, 11], 1, 3, (9,)),                                         # the CPUs the process may use, not 0..n-1
])
def test_each_worker_claims_its_own_share_of_the_cpus(monkeypatch, cpus, index, count, kept):
    pinned = {}
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(cpus), raising=False)
    monkeypatch.setattr("os.sched_setaffinity", lambda pid, s: pinned.update(cpus=tuple(s)), raising=False)
    monkeypatch.delitem(__import__("sys").modules, "torch", raising=False)  # not torch's thread count here
    assert claim_cpu_share(index, count) == kept
    assert pinned["cpus"] == kept


def test_a_single_worker_or_cpu_keeps_its_affinity(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr("os.sched_setaffinity", lambda pid, s: pytest.fail("nothing to share"), raising=False)
    assert claim_cpu_share(0, 1) is None
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {3}, raising=False)
    assert claim_cpu_share(0, 2) is None
