"""The ONNX file under test: its I/O contract, the BN semantics its graph implements, whether its outputs depend on
the batch, and the export's hygiene (SPEC §2.1, §3). Graph facts come from
:func:`vnet_accept.export.inspect.inspect_onnx`; measured outputs from the caller's runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vnet_accept.compare import max_abs_diff
from vnet_accept.export.inspect import OnnxInfo
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_INPUT_SAMPLE_SHAPE, ONNX_OUTPUT_NAME

#: The opset the port's ATC converts (SPEC §3).
PORT_OPSET = 11


def expected_contract(opset: int = PORT_OPSET) -> dict[str, Any]:
    """``actual_input_1`` (N, 1, 64, 80, 80) -> ``output1`` (N, 64, 80, 80, 2), float32, dynamic batch, ``opset``."""
    return {"inputs": [(ONNX_INPUT_NAME, "float32", ("batch", *ONNX_INPUT_SAMPLE_SHAPE))],
            "outputs": [(ONNX_OUTPUT_NAME, "float32", ("batch", *ONNX_INPUT_SAMPLE_SHAPE[1:], 2))], "opset": opset}


def contract(info: OnnxInfo, *, opset: int = PORT_OPSET, checker_error: str | None = None,
             basis: str = "") -> Criterion:
    """``export.contract``: the file's inputs, outputs, dynamic batch and opset are the port's, and onnx.checker
    accepts it."""
    expected = expected_contract(opset)
    measured = {"inputs": [(t.name, t.dtype, t.shape) for t in info.inputs],
                "outputs": [(t.name, t.dtype, t.shape) for t in info.outputs], "opset": info.opset}
    problems = [f"{key}: got {measured[key]}, expected {expected[key]}" for key in expected
                if measured[key] != expected[key]]
    if checker_error:
        problems.append(f"onnx.checker: {checker_error}")
    head = (f"{'PASS' if not problems else 'FAIL'} {info.path}: " +
            ("the port's I/O contract, dynamic batch, opset " f"{opset}" if not problems else "; ".join(problems)))
    return judged("export.contract", f"ONNX input {ONNX_INPUT_NAME} (N,1,64,80,80), output {ONNX_OUTPUT_NAME} "
                  f"(N,64,80,80,2), dynamic batch, opset {opset}, onnx.checker clean", not problems,
                  measured=measured, threshold=str(expected), basis=basis, reason="; ".join(problems),
                  message=head, metadata=info.metadata)


def bn_semantics(info: OnnxInfo, wanted: str, *, basis: str = "graph inspection (node types/outputs)") -> Criterion:
    """``export.bn_semantics``: the graph implements the BN semantics that was asked for (or folds BN away), and
    is batch-dependent exactly when that semantics is ``batch``."""
    ok = info.bn.semantics in (wanted, "none") and info.bn.batch_dependent == (wanted == "batch")
    return judged("export.bn_semantics", "inspecting the exported graph finds the BN semantics that was configured, "
                  "and says whether outputs depend on the batch", ok, measured=info.bn.semantics,
                  threshold=f"semantics == {wanted}", basis=basis, reason=info.bn.explanation,
                  message=f"{'PASS' if ok else 'FAIL'} {info.path}: BN semantics {info.bn.semantics}, wanted "
                          f"{wanted} - {info.bn.explanation}", counts=info.bn.counts,
                  batch_dependent=info.bn.batch_dependent)


def batch_invariant(info: OnnxInfo, alone: np.ndarray, batched: Mapping[int, np.ndarray], atol: float, *,
                    basis: str) -> Criterion:
    """``export.batch_invariant``: two pieces of evidence, both required (SPEC §2.1): the graph has no
    training-form ``BatchNormalization``, and samples run alone (``alone`` ``(M, D, H, W, 2)``) equal the same
    samples inside batches (``batched[n]`` ``(n, D, H, W, 2)``, compared on the first ``min(M, n)``) up to
    ``atol``. Either failing fails: the graph alone can be wrong (a decomposed BN the inspector does not
    recognise), and so can a measurement on a few samples; the first line says which and why."""
    if not batched:
        raise ValueError("no batched runs to compare with the samples run alone")
    worst, worst_n = -1.0, None
    for n, outputs in sorted(batched.items()):
        m = min(len(alone), len(outputs))
        value = max_abs_diff(outputs[:m], alone[:m])
        if value > worst:
            worst, worst_n = value, n
    dependent_graph = info.bn.batch_dependent
    passed = not dependent_graph and worst <= atol
    measured_text = (f"max |Δ log-prob| {worst:.3g} between a sample alone and inside a batch of {worst_n} "
                     f"(limit {atol:g})")
    if passed:
        head = f"PASS {info.path}: batch-invariant - {measured_text}; {info.bn.explanation}"
    elif dependent_graph:
        head = f"FAIL {info.path}: batch-dependent BN - {info.bn.explanation}; measured {measured_text}"
    else:
        head = f"FAIL {info.path}: outputs depend on the batch - {measured_text} ({info.bn.explanation})"
    return judged("export.batch_invariant", "outputs of the ONNX model do not depend on what else is in the batch "
                  "(graph inspection and ONNX Runtime bs1 vs larger batches)", passed, measured=worst,
                  units="max |Δ log-prob|", threshold=f"<= {atol:g} and no training-form BN", basis=basis,
                  reason=info.bn.explanation if passed else head.split(" - ", 1)[-1], message=head,
                  batch_dependent_graph=dependent_graph, worst_batch_size=worst_n)


def no_mutation_and_deterministic(before: str, after: str, first: bytes, second: bytes, *, basis: str) -> Criterion:
    """``export.no_mutation_and_deterministic``: exporting leaves the model's state dict as it was (sha256), and
    two exports of the same checkpoint are the same bytes."""
    ok = before == after and first == second
    problems = [*(["the export changed the model's state dict (running statistics?)"] if before != after else []),
                *(["two exports of the same checkpoint differ"] if first != second else [])]
    return judged("export.no_mutation_and_deterministic", "exporting does not change the model's state dict, and two "
                  "exports of the same checkpoint are identical bytes", ok,
                  measured={"state_dict_sha256_before": before, "state_dict_sha256_after": after,
                            "export_bytes_identical": first == second, "export_bytes": len(first)},
                  threshold="state-dict sha256 unchanged; exports identical", basis=basis,
                  reason="; ".join(problems))


def port_style_detected(info: OnnxInfo, divergence: float, mutated: bool, *, atol: float, basis: str) -> Criterion:
    """``inspect.port_style_export``: an ONNX exported the way the port's ``vnet_pth2onnx.py`` does is classified
    batch-dependent, ONNX Runtime confirms it (bs4 vs bs1 beyond ``atol``), and the export mutated the running
    statistics."""
    ok = info.bn.batch_dependent and divergence > atol and mutated
    return judged("inspect.port_style_export", "an ONNX exported the way the port's vnet_pth2onnx.py does is "
                  "classified batch-dependent, ONNX Runtime confirms it, and the export mutated the model's running "
                  "statistics", ok, measured=divergence, units="max |Δ log-prob| bs4 vs bs1",
                  threshold=f"classified batch-dependent; Δ > {atol:g}; running stats changed", basis=basis,
                  reason=info.bn.explanation, mutated_running_stats=mutated, bn_counts=info.bn.counts)
