"""The ONNX file under test: its I/O contract, the BN semantics its graph implements, whether its outputs depend on
the batch, and the export's hygiene (SPEC §2.1, §3). Graph facts come from
:func:`vnet_accept.export.inspect.inspect_onnx`; measured outputs from the caller's runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vnet_accept.compare import CompareResult, compare_outputs, max_abs_diff
from vnet_accept.export.inspect import OnnxInfo
from vnet_accept.export.onnx_file import LEGACY_EXPORT_FIX
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.reference import ATC_OPSET, ONNX_INPUT_NAME, ONNX_INPUT_SAMPLE_SHAPE, ONNX_OUTPUT_NAME
from vnet_accept.tolerances import BN_SEMANTICS_MARGIN, Tolerance

#: The opset the port's ATC converts (SPEC §3); ``--atc-opset`` changes it.
PORT_OPSET = ATC_OPSET
#: How the contract writes a dynamic dimension (any symbolic name, or an unknown size, in the file).
DYNAMIC = "N"


def expected_contract(opset: int = PORT_OPSET) -> dict[str, Any]:
    """``actual_input_1`` (N, 1, 64, 80, 80) -> ``output1`` (N, 64, 80, 80, 2), float32, dynamic batch, ``opset``."""
    return {"inputs": [(ONNX_INPUT_NAME, "float32", (DYNAMIC, *ONNX_INPUT_SAMPLE_SHAPE))],
            "outputs": [(ONNX_OUTPUT_NAME, "float32", (DYNAMIC, *ONNX_INPUT_SAMPLE_SHAPE[1:], 2))], "opset": opset}


def _contract_shape(shape: tuple) -> tuple:
    """A tensor shape as the contract compares it: the exporter's name for a dynamic axis (``batch``, the port's
    ``-1``) or an unknown size is :data:`DYNAMIC`; fixed sizes stay."""
    return tuple(d if isinstance(d, int) and d > 0 else DYNAMIC for d in shape)


def _tensors_text(tensors: Sequence[tuple[str, str, tuple]]) -> str:
    """``actual_input_1 float32 (N, 1, 64, 80, 80)``; an unknown size is ``?``."""
    return ", ".join(f"{name} {dtype} ({', '.join('?' if d is None else str(d) for d in shape)})"
                     for name, dtype, shape in tensors)


def contract_text(contract: Mapping[str, Any]) -> str:
    """A contract (:func:`expected_contract`) as a reader reads it, not as a Python dict."""
    return (f"input {_tensors_text(contract['inputs'])}; output {_tensors_text(contract['outputs'])}; "
            f"opset {contract['opset']}; {DYNAMIC} = dynamic batch")


def contract(info: OnnxInfo, *, opset: int = PORT_OPSET, checker_error: str | None = None,
             external_data: Sequence[str] = (), basis: str = "") -> Criterion:
    """``export.contract``: the file's inputs, outputs, dynamic batch and opset are the port's, its weights are inside
    it (``external_data``: the side files its tensors point to, from
    :func:`~vnet_accept.export.onnx_file.read_onnx_facts`), and onnx.checker accepts it. An opset ATC does not
    convert and weights in a side file are each named with the fix (the legacy exporter, SPEC §3)."""
    expected = expected_contract(opset)
    measured = {"inputs": [(t.name, t.dtype, t.shape) for t in info.inputs],
                "outputs": [(t.name, t.dtype, t.shape) for t in info.outputs], "opset": info.opset}
    compared = {"inputs": [(n, d, _contract_shape(s)) for n, d, s in measured["inputs"]],
                "outputs": [(n, d, _contract_shape(s)) for n, d, s in measured["outputs"]], "opset": info.opset}
    problems = [f"{key}: got {_tensors_text(measured[key])}, expected {_tensors_text(expected[key])}"
                for key in ("inputs", "outputs") if compared[key] != expected[key]]
    fix_needed = False
    if info.opset != opset:
        problems.insert(0, f"opset {info.opset}: the port's ATC converts opset {opset} (--atc-opset)"
                        + (" - opset >= 18 is what the new exporter (torch.onnx.export(..., dynamo=True), the default "
                           "in torch >= 2.9) writes" if info.opset >= 18 else ""))
        fix_needed = True
    if external_data:
        problems.insert(1 if fix_needed else 0,
                        f"weights in external data ({', '.join(external_data)} beside the .onnx): ATC and the model "
                        "zoo take one self-contained file")
        fix_needed = True
    if checker_error:
        problems.append(f"onnx.checker: {checker_error}")
    if fix_needed:
        problems.append("fix: " + LEGACY_EXPORT_FIX.format(opset=opset))
    head = (f"{'PASS' if not problems else 'FAIL'} {info.path}: " +
            ("the port's I/O contract, dynamic batch, opset " f"{opset}" if not problems else "; ".join(problems)))
    return judged("export.contract", f"ONNX input {ONNX_INPUT_NAME} (N,1,64,80,80), output {ONNX_OUTPUT_NAME} "
                  f"(N,64,80,80,2), dynamic batch, opset {opset}, weights inside the file, onnx.checker clean",
                  not problems, measured=measured, threshold=contract_text(expected), basis=basis,
                  reason="; ".join(problems), message=head, metadata=info.metadata, external_data=list(external_data))


#: What turns a batch-statistics export into a batch-invariant one (SPEC §2.1).
RUNNING_STATS_FIX = ("export with running statistics: make ContBatchNorm3d's forward call F.batch_norm(..., "
                     "training=False) with the checkpoint's running_mean/running_var (inference-form BN), then "
                     "torch.onnx.export(..., dynamo=False, opset_version=11); `vnet-accept export --bn-mode running` "
                     "writes such a file")
#: At batch 1, batch statistics are per-sample statistics: one candidate (as for the OM, SPEC §2.1).
MERGED_AT_BS1 = "batch=instance"


@dataclass(frozen=True)
class BnMeasurement:
    """ONNX Runtime's output of a file for one batch of samples against PyTorch's output of the checkpoint for the
    same batch under each BN semantics (``distances``, each a comparison under the parity tolerance). The closest
    (smallest RED) is *the* semantics when the runner-up is ``margin`` times farther; it is *reproduced* when it is
    also within the parity tolerance (a file with a changed weight is still closest to its semantics, but matches
    none)."""

    batch_size: int
    distances: dict[str, CompareResult]
    closest: str
    runner_up: str | None
    ratio: float
    margin: float

    @property
    def clear(self) -> bool:
        return self.runner_up is None or self.ratio >= self.margin

    @property
    def reproduces(self) -> bool:
        return self.clear and self.distances[self.closest].passed

    def describe(self) -> str:
        best = self.distances[self.closest]
        shown = ", ".join(f"{mode} {r.max_abs:.3g}" for mode, r in sorted(self.distances.items(),
                                                                           key=lambda kv: kv[1].red))
        ratio = "∞" if self.ratio == float("inf") else f"{self.ratio:.3g}"
        if not self.clear:
            return (f"ambiguous: {self.closest} and {self.runner_up} within {ratio}× of each other (max |Δ log-prob| "
                    f"{shown}; bs{self.batch_size})")
        fit = ("reproduces" if best.passed else "closest to, but outside the parity tolerance of,")
        return (f"{fit} PyTorch in {self.closest.upper()} semantics at bs{self.batch_size} (max |Δ log-prob| "
                f"{shown}; runner-up {ratio}× farther)")

    def to_dict(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "closest": self.closest, "runner_up": self.runner_up,
                "ratio": None if self.ratio == float("inf") else self.ratio, "margin": self.margin,
                "clear": self.clear, "reproduces": self.reproduces,
                "distances": {mode: {"max_abs": r.max_abs, "red": r.red, "flips": r.flips, "within_tolerance": r.passed}
                              for mode, r in self.distances.items()}}


def measure_bn_semantics(onnx_out: np.ndarray, torch_outs: Mapping[str, np.ndarray], tolerance: Tolerance,
                         margin: float = BN_SEMANTICS_MARGIN) -> BnMeasurement:
    """Which BN semantics a file implements, measured: ``onnx_out`` ``(N, D, H, W, 2)`` is ONNX Runtime on one batch
    of N samples, ``torch_outs[mode]`` PyTorch on the same batch in that mode. At N = 1 ``batch`` and ``instance``
    are one candidate (:data:`MERGED_AT_BS1`)."""
    refs = dict(torch_outs)
    if not refs:
        raise ValueError("no PyTorch outputs to compare the file's outputs with")
    n = int(onnx_out.shape[0])
    if n == 1 and "batch" in refs and "instance" in refs:
        refs[MERGED_AT_BS1] = refs.pop("instance")
        refs.pop("batch")
    distances = {mode: compare_outputs(onnx_out, ref, tolerance, name=f"onnxrt vs torch [bn_mode={mode}, bs{n}]")
                 for mode, ref in refs.items()}
    ranked = sorted(distances, key=lambda mode: (distances[mode].red, distances[mode].max_abs))
    closest, runner_up = ranked[0], (ranked[1] if len(ranked) > 1 else None)
    best = distances[closest].red
    ratio = float("inf") if runner_up is None else (distances[runner_up].red / best if best > 0 else float("inf"))
    return BnMeasurement(n, distances, closest, runner_up, ratio, margin)


def implemented_semantics(info: OnnxInfo, measured: BnMeasurement | None, fallback: str) -> str:
    """The BN semantics a file implements, for judging its parity: the measured one when clear, else the graph's,
    else ``fallback`` (the declared ``--bn-mode``)."""
    from vnet_accept.model.bn_modes import BN_MODES

    if measured is not None and measured.clear and measured.closest in BN_MODES:
        return measured.closest
    if info.bn.semantics in BN_MODES:
        return info.bn.semantics
    if measured is not None and measured.clear and measured.closest == MERGED_AT_BS1:
        return "batch" if info.bn.batch_dependent else "instance"
    return fallback


def bn_semantics(info: OnnxInfo, wanted: str, *, basis: str = "graph inspection (node types/outputs)",
                 measured: BnMeasurement | None = None) -> Criterion:
    """``export.bn_semantics``: the graph implements the BN semantics that was asked for (or folds BN away), is
    batch-dependent exactly when that semantics is ``batch``, and - given ``measured`` - running the file reproduces
    PyTorch in that semantics more clearly than in the others. A file that implements another semantics than
    ``--bn-mode`` declares fails, naming both and the fix."""
    graph_ok = info.bn.semantics in (wanted, "none") and info.bn.batch_dependent == (wanted == "batch")
    graph = f"graph: {info.bn.semantics} ({info.bn.explanation})"
    if measured is None:
        ok, found, measured_text = graph_ok, info.bn.semantics, ""
    else:
        found = implemented_semantics(info, measured, wanted)
        merged_ok = measured.closest == MERGED_AT_BS1 and wanted in ("batch", "instance")
        ok = graph_ok and measured.clear and (measured.closest == wanted or merged_ok)
        measured_text = f"; measured: {measured.describe()}"
    if ok:
        head = f"PASS {info.path}: BN semantics {wanted}, as --bn-mode declares - {graph}{measured_text}"
    else:
        if measured is not None and not measured.clear:
            cause = f"its BN semantics could not be told apart ({measured.closest} or {measured.runner_up})"
        else:
            cause = f"implements {found.upper()} BN, --bn-mode declares {wanted}"
        fix = (RUNNING_STATS_FIX if found == "batch" and wanted != "batch" else
               f"re-export in {wanted} semantics, or pass --bn-mode {found} if that is the semantics you mean to file")
        head = f"FAIL {info.path}: {cause} - {graph}{measured_text}; fix: {fix}"
    return judged("export.bn_semantics", "the ONNX graph implements the configured BN semantics, says whether outputs "
                  "depend on the batch, and (measured) reproduces PyTorch in that semantics", ok, measured=found,
                  units="BN semantics", threshold=f"semantics == {wanted}", basis=basis,
                  reason=head.split(": ", 1)[-1] if not ok else info.bn.explanation + measured_text, message=head,
                  counts=info.bn.counts, batch_dependent=info.bn.batch_dependent, graph_semantics=info.bn.semantics,
                  measurement=measured.to_dict() if measured is not None else None)


def batch_invariant(info: OnnxInfo, alone: np.ndarray, batched: Mapping[int, np.ndarray], atol: float, *,
                    basis: str, port_file: bool = False) -> Criterion:
    """``export.batch_invariant``: two pieces of evidence, both required (SPEC §2.1): the graph has no
    training-form ``BatchNormalization``, and samples run alone (``alone`` ``(M, D, H, W, 2)``) equal the same
    samples inside batches (``batched[n]`` ``(n, D, H, W, 2)``, compared on the first ``min(M, n)``) up to
    ``atol``. Either failing fails: the graph alone can be wrong (a decomposed BN the inspector does not
    recognise), and so can a measurement on a few samples; the first line says which, the measured dependence and
    the fix. ``port_file``: the file is the port's (``--onnx``), so a failure is a defect of the port."""
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
    whose = " - a defect of the port's ONNX (the file under test)" if port_file else ""
    if passed:
        head = f"PASS {info.path}: batch-invariant - {measured_text}; {info.bn.explanation}"
        reason = info.bn.explanation
    elif dependent_graph:
        head = (f"FAIL {info.path}: batch-dependent BN - {measured_text}; {info.bn.explanation}{whose}; fix: "
                f"{RUNNING_STATS_FIX}")
        reason = f"batch-dependent BN: {measured_text}{whose}"
    else:
        head = (f"FAIL {info.path}: outputs depend on the batch - {measured_text} ({info.bn.explanation}){whose}; fix: "
                f"{RUNNING_STATS_FIX}")
        reason = f"outputs depend on the batch: {measured_text}{whose}"
    return judged("export.batch_invariant", "outputs of the ONNX model do not depend on what else is in the batch "
                  "(graph inspection and ONNX Runtime bs1 vs larger batches)", passed, measured=worst,
                  units="max |Δ log-prob|", threshold=f"<= {atol:g} and no training-form BN", basis=basis,
                  reason=reason, message=head, batch_dependent_graph=dependent_graph, worst_batch_size=worst_n,
                  defect_of="the port's ONNX" if port_file and not passed else None)


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
