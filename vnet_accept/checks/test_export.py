"""Export hygiene and model checks: the checkpoint loads strictly, the ONNX under test honours the port's contract
and implements the configured BN semantics without depending on the batch, and the gate's exporter neither mutates
the model nor varies between runs. A port-style export (SPEC §3) must be reported as batch-dependent.

The ONNX under test is ``--onnx FILE`` (the port's, :mod:`vnet_accept.plugin.submission`), else the gate's reference
export of the checkpoint in ``--bn-mode``; every criterion on it records its sha256. Judged by
:mod:`vnet_accept.judge.checkpoint` and :mod:`vnet_accept.judge.export`."""

from __future__ import annotations

import pytest

from vnet_accept.checks.conftest import NO_WEIGHTS
from vnet_accept.compare import max_abs_diff
from vnet_accept.data.tiles import ct_like_batch
from vnet_accept.export.inspect import inspect_onnx
from vnet_accept.export.onnx_export import ExportOptions, export_onnx_bytes, state_dict_hash
from vnet_accept.export.port_style import export_port_style
from vnet_accept.judge import checkpoint, export
from vnet_accept.model.bn_modes import BN_MODES
from vnet_accept.results.inference import run_in_batches
from vnet_accept.runners.registry import create_runner


@pytest.mark.criterion("checkpoint.loads_strictly", "the checkpoint loads strictly into VNet(elu=False, nll=True)")
def test_checkpoint_loads_strictly(vnet_checkpoint, uses_real_weights, gate_record):
    basis = f"layout {vnet_checkpoint.layout}, width {vnet_checkpoint.width}, " \
            f"{'trained' if uses_real_weights else 'seeded stand-in'}"
    gate_record.record(checkpoint.loads_strictly(vnet_checkpoint, basis=basis))


@pytest.mark.criterion("export.contract", "the ONNX under test honours the port's I/O contract")
def test_export_contract(onnx_under_test, gate_options, gate_record):
    facts = onnx_under_test.facts
    external = [f"{loc} (missing)" if loc in facts.missing_external else loc for loc in facts.external_data]
    gate_record.record(export.contract(onnx_under_test.info, opset=gate_options.atc_opset,
                                       checker_error=facts.checker_error, external_data=external,
                                       basis=onnx_under_test.label), ("onnx", onnx_under_test.path))


@pytest.mark.criterion("export.no_mutation_and_deterministic", "export leaves the model untouched and is "
                       "byte-for-byte reproducible")
def test_export_no_mutation_and_deterministic(vnet_checkpoint, onnx_export, onnx_under_test, gate_record):
    model = vnet_checkpoint.build_model("batch")
    before = state_dict_hash(model)
    options = ExportOptions(bn_mode="batch", spatial=None)  # the mode that used to mutate; small trace
    # The session's cached export of the same checkpoint and options (built earlier, from another model object)
    # against a fresh one: equal bytes prove determinism across runs as well as within one.
    first = onnx_export("batch", spatial=None).read_bytes()
    second = export_onnx_bytes(model, options, checkpoint_sha256=vnet_checkpoint.sha256)
    whose = ("the gate's own exporter (the submitted file's export cannot be re-run here; its running statistics "
             "are judged by parity)" if onnx_under_test.submitted else "the gate's reference exporter")
    gate_record.record(export.no_mutation_and_deterministic(
        before, state_dict_hash(model), first, second,
        basis=f"{whose}, bn_mode=batch (the mode whose forward mutated upstream), dynamic shape"))


@pytest.mark.criterion("export.bn_semantics", "the ONNX under test implements the configured BN semantics")
def test_export_bn_semantics(onnx_under_test, onnx_runs, gate_options, uses_real_weights, gate_record):
    """Read from the graph (training-form, inference-form, instance, or folded away) and confirmed by running it:
    ONNX Runtime on the file against PyTorch on the checkpoint in each semantics, one batch. A submitted file without
    its checkpoint (no ``--vnet-weights``) is judged on its graph alone, or not at all when the graph has no BN."""
    info = onnx_under_test.info
    measured, basis = onnx_runs, f"graph of the {onnx_under_test.label}; measured: {onnx_runs.basis}"
    if onnx_under_test.submitted and not uses_real_weights:
        if info.bn.semantics not in BN_MODES:
            gate_record.skip("export.bn_semantics", "the ONNX under test implements the configured BN semantics",
                             f"{onnx_under_test.path}: {info.bn.explanation}; only running it against its checkpoint "
                             f"tells its semantics - {NO_WEIGHTS}")
        measured, basis = None, f"graph of the {onnx_under_test.label} only (not measured: {NO_WEIGHTS})"
    gate_record.record(export.bn_semantics(info, gate_options.bn_mode, basis=basis,
                                           measured=measured.measurement if measured is not None else None),
                       ("onnx", onnx_under_test.path))


@pytest.mark.criterion("export.batch_invariant", "the ONNX under test gives a sample the same output alone and in "
                       "a batch")
def test_export_is_batch_invariant(onnx_under_test, gate_options, reduced_runs, request, gate_record):
    """The gate's verdict on the artifact: batch-invariant BN (graph) and measured invariance (ONNX Runtime). The
    submitted file runs its batch of 4 at its own size; the reference export its dynamic twin at 4/8/16/32."""
    if onnx_under_test.submitted:
        runs = request.getfixturevalue("onnx_runs")
        if runs.batch_size < 2:
            gate_record.skip("export.batch_invariant", "outputs of the ONNX under test do not depend on the batch",
                             f"{onnx_under_test.path} has a fixed batch size of 1: nothing to compare a sample alone "
                             "with; export with a dynamic batch axis (dynamic_axes={'actual_input_1': {0: '-1'}, "
                             "'output1': {0: '-1'}}) to judge it")
        alone, batched = runs.alone(), {runs.batch_size: runs.batched}
        basis = f"{runs.ort_basis}, {runs.batch_size} CT-like samples at {runs.size} alone and as one batch"
    else:
        ref = reduced_runs(gate_options.bn_mode)["onnxrt"]
        alone, batched = ref.alone, ref.batched
        basis = f"{ref.basis}, bn_mode={gate_options.bn_mode}, {onnx_under_test.label} (its dynamic-shape twin)"
    gate_record.record(export.batch_invariant(onnx_under_test.info, alone, batched, gate_options.invariance_atol,
                                              basis=basis, port_file=onnx_under_test.submitted),
                       ("onnx", onnx_under_test.path))


@pytest.mark.criterion("inspect.port_style_export", "a port-style export is reported as batch-dependent")
def test_port_style_export_is_flagged(vnet_checkpoint, gate_options, tmp_path, gate_record):
    model = vnet_checkpoint.build_model("batch")
    before = state_dict_hash(model)
    path = export_port_style(model, tmp_path / "vnet_port_style.onnx", spatial=None, mutate_given_model=True)
    mutated = state_dict_hash(model) != before
    samples = ct_like_batch(4, (16, 16, 32), seed=7)
    with create_runner("ort-cpu", onnx=path) as runner:
        divergence = max_abs_diff(run_in_batches(runner, samples, 4), run_in_batches(runner, samples, 1))
    gate_record.record(export.port_style_detected(
        inspect_onnx(path), divergence, mutated, atol=gate_options.invariance_atol,
        basis="port-style export (ContBatchNorm3d, randn dummy, opset 11), ONNX Runtime CPU"))
