"""Unit tests for vnet_accept.cache: the content-addressed artifact cache (build once, hit afterwards, no races)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.cache import ENTRY_FILE, ArtifactCache, cache_key


def _counting_build(counter: Path, payload: str = "artifact"):
    """A build function that logs each call (one line per build) and writes one file."""

    def build(directory: Path) -> None:
        with open(counter, "a") as fh:
            fh.write("built\n")
        (directory / "model.onnx").write_text(payload)

    return build


def _builds(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def _leftovers(namespace_dir: Path) -> list[str]:
    """Anything in a namespace directory other than finished entries and their lock files."""
    return sorted(p.name for p in namespace_dir.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def test_builds_once_then_hits(tmp_path):
    cache, counter = ArtifactCache(tmp_path / "cache"), tmp_path / "builds.log"
    inputs = {"checkpoint_sha256": "ab" * 32, "opset": 11, "bn_mode": "running"}
    first = cache.get_or_build("onnx", inputs, _counting_build(counter))
    second = cache.get_or_build("onnx", inputs, _counting_build(counter, payload="rebuilt"))
    assert first == second
    assert _builds(counter) == 1
    assert (second / "model.onnx").read_text() == "artifact"
    assert first == tmp_path / "cache" / "onnx" / cache_key(inputs)


def test_entry_json_records_namespace_key_and_inputs(tmp_path):
    inputs = {"opset": 11, "path": tmp_path / "weights.pth", "spatial": (64, 80, 80)}
    entry = ArtifactCache(tmp_path).get_or_build("onnx", inputs, lambda d: None)
    meta = json.loads((entry / ENTRY_FILE).read_text())
    assert meta["namespace"] == "onnx"
    assert meta["key"] == entry.name == cache_key(inputs)
    assert meta["inputs"] == {"opset": 11, "path": str(tmp_path / "weights.pth"), "spatial": [64, 80, 80]}
    assert meta["build_seconds"] >= 0


def test_different_inputs_get_different_keys_and_entries(tmp_path):
    cache, counter = ArtifactCache(tmp_path), tmp_path / "builds.log"
    a = cache.get_or_build("onnx", {"opset": 11}, _counting_build(counter, "eleven"))
    b = cache.get_or_build("onnx", {"opset": 13}, _counting_build(counter, "thirteen"))
    assert a != b
    assert _builds(counter) == 2
    assert (a / "model.onnx").read_text() == "eleven" and (b / "model.onnx").read_text() == "thirteen"


def test_same_inputs_in_another_namespace_are_a_separate_entry(tmp_path):
    cache, counter = ArtifactCache(tmp_path), tmp_path / "builds.log"
    a = cache.get_or_build("onnx", {"x": 1}, _counting_build(counter))
    b = cache.get_or_build("data", {"x": 1}, _counting_build(counter))
    assert a.name == b.name and a.parent != b.parent
    assert _builds(counter) == 2


def test_cache_key_is_canonical_over_key_order_tuples_paths_and_numpy():
    assert cache_key({"a": 1, "b": [2, 3]}) == cache_key({"b": (2, 3), "a": 1})
    assert cache_key({"p": Path("/x/y")}) == cache_key({"p": "/x/y"})
    assert cache_key({"n": np.int64(3), "arr": np.array([1, 2])}) == cache_key({"n": 3, "arr": [1, 2]})
    assert cache_key({"s": {"b", "a"}}) == cache_key({"s": ["a", "b"]})
    assert cache_key({"a": 1}) != cache_key({"a": 2})
    assert cache_key({"a": 1}) != cache_key({"a": "1"})
    assert len(cache_key({})) == 64 and cache_key({}).isalnum()


def test_cache_key_rejects_unserialisable_inputs():
    with pytest.raises(TypeError, match="object"):
        cache_key({"thing": object()})


def test_a_failing_build_leaves_no_entry_and_no_temp_dir(tmp_path):
    cache = ArtifactCache(tmp_path)

    def broken(directory: Path) -> None:
        (directory / "half-written.onnx").write_text("partial")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        cache.get_or_build("onnx", {"opset": 11}, broken)
    namespace_dir = tmp_path / "onnx"
    assert not (namespace_dir / cache_key({"opset": 11})).exists()
    assert _leftovers(namespace_dir) == []
    # and the next attempt builds it properly
    counter = tmp_path / "builds.log"
    entry = cache.get_or_build("onnx", {"opset": 11}, _counting_build(counter))
    assert _builds(counter) == 1 and (entry / "model.onnx").is_file()
    assert not (entry / "half-written.onnx").exists()


def test_keyboard_interrupt_during_build_also_cleans_up(tmp_path):
    cache = ArtifactCache(tmp_path)

    def interrupted(directory: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build("onnx", {"opset": 11}, interrupted)
    assert _leftovers(tmp_path / "onnx") == []
    assert not (tmp_path / "onnx" / cache_key({"opset": 11})).exists()


def test_an_entry_without_entry_json_is_rebuilt_with_a_warning(tmp_path):
    cache, counter = ArtifactCache(tmp_path), tmp_path / "builds.log"
    inputs = {"opset": 11}
    entry = cache.get_or_build("onnx", inputs, _counting_build(counter, "first"))
    (entry / ENTRY_FILE).unlink()
    with pytest.warns(UserWarning, match="incomplete or stale"):
        again = cache.get_or_build("onnx", inputs, _counting_build(counter, "second"))
    assert again == entry
    assert _builds(counter) == 2
    assert (again / "model.onnx").read_text() == "second"
    assert (again / ENTRY_FILE).is_file()


@pytest.mark.parametrize("corruption", ["{not json", json.dumps({"key": "0" * 64})])
def test_a_corrupt_or_foreign_entry_json_is_rebuilt_with_a_warning(tmp_path, corruption):
    cache, counter = ArtifactCache(tmp_path), tmp_path / "builds.log"
    entry = cache.get_or_build("onnx", {"opset": 11}, _counting_build(counter))
    (entry / ENTRY_FILE).write_text(corruption)
    with pytest.warns(UserWarning, match=str(entry.name)):
        cache.get_or_build("onnx", {"opset": 11}, _counting_build(counter))
    assert _builds(counter) == 2
    assert json.loads((entry / ENTRY_FILE).read_text())["key"] == entry.name


@pytest.mark.parametrize("namespace", ["../x", "..", "a/b", "/abs", "", "onnx/../../etc", "x\\y", "."])
def test_namespaces_that_could_escape_the_root_are_rejected(tmp_path, namespace):
    cache = ArtifactCache(tmp_path / "cache")
    with pytest.raises(ValueError, match="bad cache namespace"):
        cache.get_or_build(namespace, {"a": 1}, lambda d: None)
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("key", ["../x", "..", "a/b", "", "/etc"])
def test_keys_that_could_escape_the_root_are_rejected(tmp_path, key):
    with pytest.raises(ValueError, match="bad cache namespace"):
        ArtifactCache(tmp_path).entry_dir("onnx", key)


def test_valid_namespace_names_with_dashes_and_underscores_are_accepted(tmp_path):
    assert ArtifactCache(tmp_path).entry_dir("om-bs_16", "abc123") == tmp_path / "om-bs_16" / "abc123"


def test_concurrent_threads_build_exactly_once(tmp_path):
    cache, counter = ArtifactCache(tmp_path), tmp_path / "builds.log"
    barrier = threading.Barrier(3)
    results: list[Path] = []
    errors: list[BaseException] = []

    def slow_build(directory: Path) -> None:
        _counting_build(counter)(directory)
        threading.Event().wait(0.2)  # hold the lock long enough for the others to queue behind it

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(cache.get_or_build("onnx", {"opset": 11}, slow_build))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(results) == 3 and len(set(results)) == 1
    assert _builds(counter) == 1


_RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from vnet_accept.cache import ArtifactCache

    root, counter, ready_dir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    me, n = sys.argv[4], int(sys.argv[5])
    (ready_dir / me).touch()
    deadline = time.monotonic() + 20
    while len(list(ready_dir.iterdir())) < n and time.monotonic() < deadline:  # start together
        time.sleep(0.005)

    def build(directory):
        with open(counter, "a") as fh:
            fh.write(me + "\\n")
        time.sleep(0.3)
        (directory / "model.onnx").write_text("from " + me)

    print(ArtifactCache(root).get_or_build("onnx", {"opset": 11, "bn_mode": "running"}, build))
""")


def test_concurrent_processes_build_exactly_once(tmp_path):
    n = 3
    root, counter, ready = tmp_path / "cache", tmp_path / "builds.log", tmp_path / "ready"
    ready.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(root), str(counter), str(ready), f"p{i}", str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err for _, err in outs]
    paths = {out.strip() for out, _ in outs}
    assert len(paths) == 1
    builders = counter.read_text().split()
    assert len(builders) == 1
    assert Path(paths.pop(), "model.onnx").read_text() == f"from {builders[0]}"
    assert _leftovers(root / "onnx") == []
