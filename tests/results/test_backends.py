"""The backend registry, and the CLI chain with real backends on a narrow VNet (one tile)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from vnet_accept.cli import main
from vnet_accept.compare import compare_outputs
from vnet_accept.errors import UsageError
from vnet_accept.results.layouts import read_output
from vnet_accept.results.synthetic import small_dataset
from vnet_accept.runners import registry
from vnet_accept.runners.registry import BackendSpec, backend_names, create_runner, get_backend, register_backend


def test_the_built_in_backends_and_what_they_need():
    assert {"ort-cpu", "torch-cpu"} <= set(backend_names())
    assert get_backend("ort-cpu").needs == "onnx" and get_backend("torch-cpu").needs == "weights"
    with pytest.raises(UsageError, match="unknown backend 'ort-cuda'; choose one of .*; did you mean ort-cpu?"):
        get_backend("ort-cuda")
    with pytest.raises(UsageError, match="backend ort-cpu runs an ONNX file: pass --onnx FILE"):
        create_runner("ort-cpu")
    with pytest.raises(UsageError, match="pass --weights CHECKPOINT .* an ONNX file cannot be turned back"):
        create_runner("torch-cpu", onnx="vnet.onnx")


def test_other_modules_register_backends(monkeypatch):
    made = []

    def factory(request):
        made.append(request)
        return create_runner("torch-cpu", model=request.model, bn_mode=request.bn_mode)

    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))
    register_backend(BackendSpec("torch-test", "a test backend", "weights", factory))
    with pytest.raises(ValueError, match="already registered"):
        register_backend(BackendSpec("torch-test", "again", "weights", factory))
    from vnet_accept.model.vnet import VNet

    runner = create_runner("torch-test", model=VNet(width=2), bn_mode="instance")
    assert made[0].bn_mode == "instance" and runner.bn_mode == "instance"
    assert registry.runner_width(runner) == 2
    with pytest.raises(ValueError, match="needs must be one of"):
        BackendSpec("x", "y", "gpu", factory)


def test_every_backend_module_registers_its_backends(monkeypatch):
    """A new backend is one file plus one line in EXTENSION_MODULES; every module listed there exists (no
    load-if-it-exists: a missing one is an import error, not a silently absent backend)."""
    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))
    monkeypatch.setattr(registry, "_extensions_loaded", False)
    names = backend_names()
    assert {"ort-cpu", "torch-cpu", "torch-cuda", "om-npu"} <= set(names), names
    monkeypatch.setattr(registry, "_extensions_loaded", False)
    monkeypatch.setattr(registry, "EXTENSION_MODULES", ("vnet_accept.no_such_module",))
    with pytest.raises(ModuleNotFoundError):
        backend_names()


@pytest.fixture(scope="module")
def one_tile(tmp_path_factory):
    """A dataset of one scan whose only lung is in tile 3 (one tile to run), and a width-2 checkpoint."""
    base = tmp_path_factory.mktemp("one-tile")
    data = small_dataset(base, tiles=((3,),), seed=5)
    assert main(["checkpoint", "random", "-o", str(base / "w2.pth.tar"), "--width", "2", "--seed", "3"]) == 0
    return base, data


def test_export_infer_postprocess_chain_with_both_cpu_backends(one_tile, capsys):
    base, data = one_tile
    weights, onnx = base / "w2.pth.tar", base / "vnet.onnx"
    assert main(["export", "--weights", str(weights), "--bn-mode", "instance", "-o", str(onnx)]) == 0
    assert main(["infer", "--onnx", str(onnx), "--prep", str(data.manifest.directory), "-o", str(base / "ort"),
                 "--batch-size", "2"]) == 0
    assert json.loads((base / "ort" / "vnet_accept_infer.json").read_text())["bn_mode"] == "instance"  # from the ONNX
    with pytest.raises(UsageError, match="implements BN mode instance, not running"):
        create_runner("ort-cpu", onnx=onnx, bn_mode="running")
    assert main(["infer", "--backend", "torch-cpu", "--weights", str(weights), "--bn-mode", "instance", "--prep",
                 str(data.manifest.directory), "-o", str(base / "torch"), "--layout", "benchmark"]) == 0
    printed = capsys.readouterr().out
    assert "ran 1 tiles in 1 batches (0 resumed)" in printed and "GFLOP/s" in printed
    record = json.loads((base / "torch" / "vnet_accept_infer.json").read_text())
    assert record["backend"].startswith("torch-cpu [bn_mode=instance") and record["width"] == 2
    ort = read_output(base / "ort" / "0_0.bin")
    torch_out = read_output(base / "torch" / "dumpOutput_device0" / "0_1.bin")
    assert compare_outputs(ort, torch_out).passed
    counts = []
    for folder in ("ort", "torch"):
        status = main(["postprocess", str(base / folder), "--luna16", str(data.root), "--uids", str(data.uid_file),
                       "--json", str(base / f"{folder}.json")])
        assert status in (0, 1)
        counts.append(json.loads((base / f"{folder}.json").read_text())["incorrect"])
    flips = int((np.argmax(ort, -1) != np.argmax(torch_out, -1)).sum())
    assert abs(counts[0] - counts[1]) <= flips
    # A re-run finds everything in place; one with another batch size never adopts those outputs (issue 12).
    assert main(["infer", "--onnx", str(onnx), "--prep", str(data.manifest.directory), "-o", str(base / "ort"),
                 "--batch-size", "2"]) == 0
    assert "ran 0 tiles (1 already there, resumed)" in capsys.readouterr().out
    assert main(["infer", "--onnx", str(onnx), "--prep", str(data.manifest.directory), "-o", str(base / "ort")]) == 2
    assert "says batch_size 2, this run's is 1" in capsys.readouterr().err
    if importlib.util.find_spec("vnet_accept.runners.backend_choice") is not None:  # --backend auto (issue 6)
        assert main(["infer", "--backend", "auto", "--onnx", str(onnx), "--prep", str(data.manifest.directory),
                     "-o", str(base / "ort"), "--batch-size", "2"]) == 0
        captured = capsys.readouterr()
        assert "backend ort-cpu: only an ONNX file" in captured.err and "ran 0 tiles" in captured.out


def test_cli_usage_errors_are_one_line(one_tile, capsys):
    base, data = one_tile
    assert main(["infer", "--backend", "nope", "--prep", str(data.manifest.directory), "-o", str(base / "x")]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
    assert main(["infer", "--prep", str(data.manifest.directory), "-o", str(base / "x"), "--shard", "3/2"]) == 2
    assert "K/N needs 1 <= K <= N" in capsys.readouterr().err
    assert main(["postprocess", str(base), "--luna16", str(data.root)]) == 2
    assert "pass --uids FILE" in capsys.readouterr().err
