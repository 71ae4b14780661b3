"""``vnet-accept gate`` on the port being filed: the contributor's ONNX (``--onnx``) is the artifact the export,
parity and batch-invariance criteria judge, and the OMs are compared with one ONNX only.

The gate runs the real criteria (imported into the tiny inner suite of tests/gate/conftest.py, with the fixtures
they read) on a width-2 checkpoint and ONNX files exported from it outside the gate, so each run costs seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from vnet_accept.io_utils import sha256_file

FIXTURES = "from vnet_accept.checks.conftest import full_tile_input, onnx_runs, reduced_inputs, reduced_runs  # noqa\n"
EXPORT_SUITE = FIXTURES + ("from vnet_accept.checks.test_export import (  # noqa\n"
                           "    test_export_bn_semantics, test_export_contract, test_export_is_batch_invariant)\n")
PARITY_SUITE = FIXTURES + "from vnet_accept.checks.test_parity import test_parity_batch16_reduced  # noqa\n"
ALL_SUITE = EXPORT_SUITE + "from vnet_accept.checks.test_parity import test_parity_full_tile  # noqa\n" + \
    "from vnet_accept.checks.test_parity import test_parity_batch16_reduced  # noqa\n"
# The backend agreement runs ONNX Runtime at bs1 over the first scan's tiles: the cheapest criterion that shows which
# file the chain's ONNX Runtime runs were of (the other chain criteria take their runs from the same factory).
ACCURACY_SUITE = "from vnet_accept.checks.test_accuracy import test_backends_agree  # noqa\n"
CHANGED = "up_tr128.ops.0.conv1"
AXES = {"actual_input_1": {0: "-1"}, "output1": {0: "-1"}}
SPATIAL_AXES = {"actual_input_1": {0: "-1", 2: "d", 3: "h", 4: "w"}, "output1": {0: "-1", 1: "d", 2: "h", 3: "w"}}


@dataclass(frozen=True)
class Submission:
    weights: Path
    port_style: Path  # the port's vnet_pth2onnx.py: training-form BN, opset 11, dynamic batch (and spatial axes)
    running: Path  # exported independently in running semantics at 64×80×80, as ATC wants it
    changed: Path  # running semantics, one layer's weights changed before export (dynamic spatial axes)
    cache: Path


def _torch_export(model, path: Path, spatial, axes) -> Path:
    """A contributor's own export (plain torch.onnx.export, not the gate's exporter)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 1, *spatial),), str(path), opset_version=11,
                          input_names=["actual_input_1"], output_names=["output1"], dynamic_axes=axes, dynamo=False)
    return path


@pytest.fixture(scope="module")
def submission(tmp_path_factory) -> Submission:
    import torch

    folder = tmp_path_factory.mktemp("submission")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/conftest.py one_thread: tiny forwards on a shared 2-core machine
    try:
        return _make_submission(folder)
    finally:
        torch.set_num_threads(threads)


def _make_submission(folder: Path) -> Submission:
    import torch

    from vnet_accept.export.port_style import export_port_style
    from vnet_accept.model.checkpoint import load_checkpoint, write_random_checkpoint

    weights = write_random_checkpoint(folder / "vnet_w2.pth.tar", seed=3, width=2)
    checkpoint = load_checkpoint(weights)
    port = export_port_style(checkpoint.build_model("batch"), folder / "port" / "vnet.onnx", spatial=None)
    running = _torch_export(checkpoint.build_model("running"), folder / "vnet_running.onnx", (64, 80, 80), AXES)
    model = checkpoint.build_model("running")
    with torch.no_grad():
        weight = dict(model.named_parameters())[f"{CHANGED}.weight"]
        weight.add_(0.01 * weight.pow(2).mean().sqrt() * torch.randn(weight.shape,
                                                                      generator=torch.Generator().manual_seed(0)))
    changed = _torch_export(model, folder / "vnet_changed.onnx", (32, 32, 32), SPATIAL_AXES)
    return Submission(weights, port, running, changed, folder / "cache")


def _gate(gate_cli, submission, onnx, suite, *extra):
    code, out, err = gate_cli("--weights", str(submission.weights), "--onnx", str(onnx), "--vnet-cache-dir",
                              str(submission.cache), *extra, suite=suite)
    assert Path("gate-report/gate-report.json").is_file(), (code, out, err)
    report = json.loads((Path("gate-report") / "gate-report.json").read_text())
    return code, out, err, {c["id"]: c for c in report["criteria"]}, report


def test_a_port_style_onnx_fails_the_gate_naming_the_file_and_the_batch_dependence(gate_cli, submission, no_figures,
                                                                                   one_thread):
    code, out, err, criteria, report = _gate(gate_cli, submission, submission.port_style, EXPORT_SUITE)
    assert code == 1, out + err
    c = criteria["export.batch_invariant"]
    first = c["message"].splitlines()[0]
    assert c["verdict"] == "fail" and first.startswith(f"FAIL {submission.port_style}: batch-dependent BN - max "
                                                       "|Δ log-prob| ")
    assert c["measured"] > 1e-3 and "between a sample alone and inside a batch of 4" in first
    assert "a defect of the port's ONNX" in c["reason"] and "fix: export with running statistics" in first
    assert c["artifacts"]["onnx"] == {"path": str(submission.port_style),
                                      "sha256": sha256_file(submission.port_style)}
    semantics = criteria["export.bn_semantics"]
    assert semantics["verdict"] == "fail" and semantics["measured"] == "batch"
    assert "implements BATCH BN, --bn-mode declares running" in semantics["reason"]
    assert any(line.startswith(f"ONNX under test {submission.port_style} (--onnx, sha256 ")
               for line in report["gate"]["judged_on"])
    assert "export.batch_invariant" in out and "FAIL" in out


def test_an_independent_running_export_passes_and_its_sha256_is_recorded(gate_cli, submission, no_figures, one_thread):
    code, out, err, criteria, _ = _gate(gate_cli, submission, submission.running, ALL_SUITE)
    assert code == 0, out + err
    sha = sha256_file(submission.running)
    judged = {cid: c for cid, c in criteria.items() if c["verdict"] != "skip"}
    assert set(judged) == {"export.contract", "export.bn_semantics", "export.batch_invariant",
                           "parity.onnxrt_vs_torch.running.bs1_64x80x80", "parity.onnxrt_vs_torch.running.bs2_64x80x80"}
    for cid, c in judged.items():
        assert c["verdict"] == "pass", (cid, c["message"])
        assert c["artifacts"]["onnx"]["sha256"] == sha, cid
    assert judged["export.bn_semantics"]["measured"] == "running"
    skipped = criteria["parity.onnxrt_vs_torch.batch.bs1_64x80x80"]
    assert skipped["verdict"] == "skip" and "implements running BN semantics" in skipped["reason"]


def test_a_changed_layer_fails_parity_and_the_failure_names_it(gate_cli, submission, no_figures, one_thread):
    code, out, err, criteria, _ = _gate(gate_cli, submission, submission.changed, PARITY_SUITE)
    assert code == 1, out + err
    c = criteria["parity.onnxrt_vs_torch.running.bs4_16x32x32"]
    first = c["message"].splitlines()[0]
    assert c["verdict"] == "fail" and f"first diverging layer {CHANGED} (+ bn1 folded) (max |Δ| " in first
    assert "up_tr128.relu1 before it agrees" in first
    assert c["details"]["localisation"]["first_diverging"] == CHANGED


def _refused(code, out, err, *fragments):
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vnet-accept gate: error: "), err
    assert all(f in lines[0] for f in fragments), lines[0]
    assert not Path("gate-report").exists()


def test_two_onnx_files_in_npu_results_stop_the_gate_at_start(gate_cli, gate_workdir):
    results = gate_workdir / "npu-results"
    results.mkdir()
    (results / "vnet.onnx").write_bytes(b"first")
    (results / "vnet_dynamo.onnx").write_bytes(b"second")
    _refused(*gate_cli("--npu-results", str(results)), "2 ONNX files", str(results / "vnet.onnx"),
             str(results / "vnet_dynamo.onnx"))


def test_an_onnx_in_npu_results_that_is_not_onnx_stops_the_gate_naming_both(gate_cli, gate_workdir, submission):
    results = gate_workdir / "npu-results"
    results.mkdir()
    (results / "vnet.onnx").write_bytes(submission.port_style.read_bytes())
    _refused(*gate_cli("--npu-results", str(results), "--onnx", str(submission.running)),
             f"holds {results / 'vnet.onnx'} (sha256 ", f"which is not --onnx {submission.running}")


@pytest.mark.parametrize("args, fragment", [
    (["--onnx", "nowhere.onnx"], "--onnx: ONNX file nowhere.onnx does not exist"),
    (["--onnx", "empty.onnx"], "--onnx: empty.onnx is empty (0 bytes)"),
    (["--info", "vnet_prep_bin.info"], "--prep-info vnet_prep_bin.info needs --prep-bin DIR"),
    (["--prep-bin", "."], "holds no <i>.bin files"),
])
def test_bad_submission_files_are_refused_before_any_test_runs(args, fragment, gate_cli, gate_workdir):
    (gate_workdir / "empty.onnx").write_bytes(b"")
    (gate_workdir / "vnet_prep_bin.info").write_text("0 ./prep_bin/0.bin 80 80\n")
    _refused(*gate_cli(*args), fragment)


def test_without_its_checkpoint_a_submitted_onnx_is_judged_only_where_no_checkpoint_is_needed(
        gate_cli, submission, artifact_cache, no_figures, one_thread):
    """No --weights: the graph and ONNX Runtime still judge the file (its batch dependence fails it); parity against
    seeded stand-in weights would mean nothing, so it is not judged, saying what to pass."""
    code, out, err = gate_cli("--onnx", str(submission.port_style), "--vnet-cache-dir", str(artifact_cache.root),
                              suite=EXPORT_SUITE + "from vnet_accept.checks.test_parity import test_parity_full_tile"
                              "  # noqa\n")
    criteria = {c["id"]: c for c in json.loads(Path("gate-report/gate-report.json").read_text())["criteria"]}
    assert code == 1, out + err
    assert criteria["export.batch_invariant"]["verdict"] == "fail"
    semantics = criteria["export.bn_semantics"]
    assert semantics["verdict"] == "fail" and "not measured: the submitted ONNX is compared with the checkpoint" in \
        semantics["basis"]
    for mode in ("batch", "instance", "running"):
        parity = criteria[f"parity.onnxrt_vs_torch.{mode}.bs1_64x80x80"]
        assert parity["verdict"] == "skip" and parity["reason"].endswith("pass --vnet-weights vnet_model_best.pth.tar")


def test_the_ports_own_tiles_and_info_file_are_judged(gate_cli, submission, tmp_path, no_figures):
    """``--prep-bin``/``--info``: the port's numbered files (no manifest) judged by (UID, tile); its info file in glob
    order fails, since the ONNX under test (the port's) uses batch statistics."""
    import importlib
    import shutil

    from vnet_accept.results.synthetic import small_dataset

    small = small_dataset(tmp_path / "data")
    prep = shutil.copytree(small.manifest.directory, tmp_path / "prep_bin")
    (prep / "manifest.json").unlink()
    info = tmp_path / "vnet_prep_bin.info"
    names = sorted(p.name for p in prep.glob("*.bin"))  # glob order: 0.bin, 1.bin, 10.bin, ...
    info.write_text("".join(f"{i} ./prep_bin/{name} 80 80\n" for i, name in enumerate(names)))
    suite = "from vnet_accept.checks.test_data_inputs import *  # noqa\n"
    # The imports above ran after gate_cli put its (not yet created) suites folder on sys.path: Python cached that
    # folder as holding nothing, and the inner suite would not be found.
    importlib.invalidate_caches()
    code, out, err, criteria, report = _gate(gate_cli, submission, submission.port_style, suite, "--luna16",
                                             str(small.root), "--test-uids", str(small.uid_file), "--prep-bin",
                                             str(prep), "--info", str(info))
    assert code == 1, out + err
    inputs = criteria["data.inputs_match_manifest"]
    assert inputs["verdict"] == "pass" and inputs["details"]["tiles_checked"] == 14
    assert f"the port's tiles in {prep} (14 files; 14 files = the tiles of 3 UIDs)" in inputs["basis"]
    assert criteria["data.uid_coverage"]["verdict"] == "pass"
    order = criteria["data.info_order"]
    assert order["verdict"] == "fail" and "line 2 -> 10.bin" in order["reason"]
    assert "the ONNX under test uses batch statistics" in order["reason"]
    assert f"the port's tiles in {prep} (14 .bin files, --prep-bin; info file {info})" in report["gate"]["judged_on"]


def test_the_accuracy_chains_onnx_runtime_runs_are_the_submitted_file(gate_cli, submission, no_figures, one_thread):
    code, out, err, criteria, _ = _gate(gate_cli, submission, submission.running, ACCURACY_SUITE, "--backend",
                                        "ort-cpu")
    assert code == 0, out + err
    sha = sha256_file(submission.running)
    c = criteria["accuracy.consistency.onnxrt_vs_torch-cpu"]
    assert c["verdict"] == "pass", c["message"]
    assert c["artifacts"]["onnx"] == {"path": str(submission.running), "sha256": sha}
    assert f"on the submitted ONNX {submission.running} (sha256 {sha[:12]}" in c["basis"], c["basis"]


def test_the_chain_really_runs_the_submitted_file_a_changed_layer_makes_the_backends_disagree(
        gate_cli, submission, no_figures, one_thread):
    code, out, err, criteria, _ = _gate(gate_cli, submission, submission.changed, ACCURACY_SUITE, "--backend",
                                        "torch-cpu")
    assert code == 1, out + err
    c = criteria["accuracy.consistency.onnxrt_vs_torch-cpu"]
    assert c["verdict"] == "fail" and c["artifacts"]["onnx"]["sha256"] == sha256_file(submission.changed), c
    assert c["measured"] > 0  # label flips between the changed file and the checkpoint


def test_a_submitted_file_the_chain_cannot_run_leaves_it_on_the_reference_export_and_says_why(
        gate_cli, submission, no_figures, one_thread, tmp_path):
    from vnet_accept.model.checkpoint import load_checkpoint

    fixed = _torch_export(load_checkpoint(submission.weights).build_model("running"), tmp_path / "vnet_bs1.onnx",
                          (64, 80, 80), None)
    code, out, err, criteria, _ = _gate(gate_cli, submission, fixed, ACCURACY_SUITE, "--backend", "torch-cpu")
    assert code == 0, out + err
    c = criteria["accuracy.consistency.onnxrt_vs_torch-cpu"]
    assert c["verdict"] == "pass" and "onnx" not in c["artifacts"], c
    assert (f"on the reference export (the submitted {fixed} cannot run the chain: its batch is fixed at 1, the "
            "chain runs batches of 16)") in c["basis"], c["basis"]
