"""NPU criteria (issue 5): the OM on an Ascend 310/310P, judged on ``--npu-results DIR`` (results and logs copied
from an Ascend host; layout in :mod:`vnet_accept.ascend.results_folder`) or produced here by ATC and
ais_bench/benchmark when CANN is installed. Without both, every test skips naming what is missing.

Per batch size (``--batch-sizes``): ``om.atc.bs<N>`` (exit status 0, the success line, no error code - and here
the OM on disk), ``accuracy.error_rate.om_bs<N>`` (the accuracy rule, through the accuracy gate's own helper),
``om.parity.om_vs_onnx.bs<N>`` (each of ``--om-parity-tiles`` tiles against ONNX Runtime under the fp16 limits of
:mod:`vnet_accept.ascend.judge`), ``om.batch_invariance.bs1_vs_bs<N>`` (labels), ``perf.throughput.bs<N>``
(card fps = per-chip fps × chips per card vs the T4). Once: ``om.inputs_match`` (the results belong to the
tiles judged), ``om.bn_semantics`` (which BN semantics the OM implements), ``perf.tier`` and ``perf.rule_310p``.
The OM's numbers are fp16 (ATC's default ``force_fp16``) on one chip per device id; every basis says so.
"""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.ascend.judge import BN_CANDIDATES, OM_DTYPE, bn_semantics, judge_perf, om_batch_invariance, om_parity
from vnet_accept.errors import DataError, ToolError
from vnet_accept.plugin.ascend_fixtures import settings_key
from vnet_accept.reference import AUTHORITATIVE_BATCH_SIZES, TIER_NAMES
from vnet_accept.tolerances import om_tolerance

pytestmark = pytest.mark.npu


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sizes = metafunc.config.stash[settings_key].batch_sizes
    if "batch_size" in metafunc.fixturenames:
        metafunc.parametrize("batch_size", sizes, ids=[f"bs{bs}" for bs in sizes])
    if "larger_batch_size" in metafunc.fixturenames:
        larger = [bs for bs in sizes if bs > 1]
        metafunc.parametrize("larger_batch_size", larger, ids=[f"bs{bs}" for bs in larger])


@pytest.fixture(scope="session", autouse=True)
def npu_source(npu_evidence):
    """The results judged, first: without them every test skips here, before any costly fixture."""
    return npu_evidence


def _labels(dataset) -> dict[str, str]:
    return {e.stem: f"scan {e.uid}, tile {e.tile}" for e in dataset.manifest.entries}


def _results(evidence, bs: int, gate_record, cid: str, description: str):
    """The outputs at ``bs``. Absent from a replay folder: a skip, except at bs1/bs16 (the authoritative sizes),
    where it fails; a live run that cannot produce them, or a folder that cannot be read, fails."""
    __tracebackhide__ = True
    try:
        return evidence.batch(bs)
    except (DataError, ToolError) as exc:
        c = gate_record.criterion(cid, description, basis=evidence.describe())
        absent = isinstance(exc, DataError) and str(exc).startswith(f"no bs{bs} results")
        if absent and evidence.kind == "replay" and bs not in AUTHORITATIVE_BATCH_SIZES:
            c.skip(str(exc))
        c.measure(None, False, reason=str(exc).splitlines()[0])
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def om_inputs(npu_evidence, gate_options, request):
    """Whether the results belong to the tiles judged. Results copied from a host were cut from LUNA16 there: the
    synthetic stand-in dataset cannot match them, so without ``--luna16-root`` the tests that need tiles skip."""
    from vnet_accept.ascend.results_folder import check_inputs

    if npu_evidence.kind == "replay" and not gate_options.luna16_root:
        pytest.skip("results copied from an Ascend host are judged against the tiles they were computed from: pass "
                    "--luna16-root (the LUNA16 the host's tiles were cut from) and --test-uids")
    return check_inputs(npu_evidence.results, request.getfixturevalue("accuracy_dataset").manifest)


def _outputs(batch, labels: dict[str, str], c) -> dict:
    """``{stem: output file}`` of a batch size, or the criterion fails naming the bad files (off-by-one output
    index, wrong sizes, duplicates, tiles not in the manifest)."""
    __tracebackhide__ = True
    try:
        return batch.outputs(labels)
    except DataError as exc:
        lines = str(exc).splitlines()
        c.measure(None, False, reason=lines[0], problems=lines[1:])
        pytest.fail(str(exc), pytrace=False)


def _stop_on_wrong_inputs(om_inputs, c) -> None:
    __tracebackhide__ = True
    if om_inputs.status == "differ":
        c.measure(None, False, reason=om_inputs.describe())
        pytest.fail(om_inputs.describe(), pytrace=False)


@pytest.fixture(scope="session")
def om_reference_onnx(npu_evidence, gate_options, onnx_export, uses_real_weights, vnet_checkpoint):
    """The ONNX the OM is compared with: the one the OMs were converted from (the results folder's ``*.onnx``,
    or the gate's own export that a live run converted), as ``(path, description)``."""
    if npu_evidence.reference_onnx is not None:
        return npu_evidence.reference_onnx, f"{npu_evidence.reference_onnx.name} from the results folder"
    if npu_evidence.kind == "replay" and not uses_real_weights:
        pytest.skip("the OM is compared with the ONNX it was converted from: put that ONNX in the --npu-results "
                    "folder, or pass --vnet-weights (the checkpoint it was exported from) so the gate exports it")
    return (onnx_export(gate_options.bn_mode),
            f"the gate's export (bn_mode={gate_options.bn_mode}) of {vnet_checkpoint.describe()}")


# --- conversion -----------------------------------------------------------------------------------------------------

@pytest.mark.criterion("om.atc", "ATC converts the ONNX into an OM at this batch size")
def test_atc_conversion(batch_size, npu_evidence, gate_record):
    cid = f"om.atc.bs{batch_size}"
    description = f"ATC converts the ONNX into an OM for bs{batch_size}: exit status 0 and the success line"
    record = npu_evidence.atc(batch_size)
    if record is None:
        gate_record.skip(cid, description, f"no ATC console for bs{batch_size} in {npu_evidence.root} (expected "
                         f"atc_bs{batch_size}.log: `atc … > atc_bs{batch_size}.log 2>&1; echo \"ATC exit status $?\" "
                         f">> atc_bs{batch_size}.log`)")
    log = record.log
    live = npu_evidence.kind == "live"
    c = gate_record.criterion(cid, description + (" and the OM on disk" if live else ""), units="exit status",
                              threshold="0, 'ATC run success', no error code",
                              basis=f"{record.path.name} ({'run here' if live else 'console copied from the host'})")
    if record.exit_status is None:
        exit_text = "exit status not recorded (judged by the console; append `echo \"ATC exit status $?\"`)"
    else:
        exit_text = f"exit status {record.exit_status}"
    codes = ", ".join(m.describe() for m in log.errors) or "no error code"
    reason = (f"{'PASS' if record.succeeded else 'FAIL'} ATC bs{batch_size}: {exit_text}; "
              f"{'success line' if log.success_line else 'no success line'}"
              f"{'; failure line' if log.failure_line else ''}; {codes}")
    om = npu_evidence.om_path(batch_size)
    c.measure(record.exit_status, record.succeeded, reason=reason, error_codes=list(log.error_codes),
              warning_codes=list(log.warning_codes), warnings=[m.describe() for m in log.warnings],
              log=str(record.path), om=str(om) if om else None)
    if om is not None:
        c.artifact("om", om)
    c.assert_passed(reason + "\nlog tail:\n" + "\n".join(record.text.strip().splitlines()[-20:]))


# --- the results belong to the tiles judged --------------------------------------------------------------------------

@pytest.mark.criterion("om.inputs_match", "the NPU results were computed from the tiles the gate judges with")
def test_inputs_match(npu_evidence, om_inputs, accuracy_dataset, gate_record):
    description = "the NPU results were computed from the tiles the gate judges with (sha256 of every input)"
    if om_inputs.status == "unverified":
        gate_record.skip("om.inputs_match", description, om_inputs.describe())
    c = gate_record.criterion("om.inputs_match", description, units="tiles differing", threshold="0",
                              basis=f"{om_inputs.source} vs {accuracy_dataset.describe()}")
    c.measure(len(om_inputs.differing), om_inputs.status == "match", reason=om_inputs.describe(),
              differing=list(om_inputs.differing[:50]), checked=om_inputs.checked,
              folder_problems=npu_evidence.results.problems, folder_notes=npu_evidence.results.notes)
    c.assert_passed(om_inputs.describe())


# --- accuracy of the OM outputs --------------------------------------------------------------------------------------

@pytest.mark.criterion("accuracy.error_rate.om", "the OM's pooled error rate is within the accuracy rule")
def test_om_error_rate(batch_size, npu_evidence, om_inputs, accuracy_runs, accuracy_dataset, accuracy_reference,
                       accuracy_artifact_dir, uses_real_weights, gate_record):
    from vnet_accept.results.criteria import failure_line, measure_error_rate, not_judged_reason, threshold_text

    cid = f"accuracy.error_rate.om_bs{batch_size}"
    description = f"pooled voxel error rate of the OM at bs{batch_size} over the test split"
    batch = _results(npu_evidence, batch_size, gate_record, cid, description)
    try:
        batch.outputs(_labels(accuracy_dataset))  # the folder's own defects first (names, sizes, duplicates)
        if om_inputs.status == "differ":
            raise DataError(om_inputs.describe())
        report = accuracy_runs.postprocess(batch.folder, keep_predictions=True)
    except DataError as exc:
        c = gate_record.criterion(cid, description, units="%", threshold=threshold_text(accuracy_reference),
                                  basis=str(batch.folder))
        c.measure(None, False, reason=str(exc).splitlines()[0], problems=str(exc).splitlines()[1:])
        pytest.fail(str(exc), pytrace=False)
    basis = (f"{batch.folder} ({report.folder.layout}), OM bs{batch_size}, {OM_DTYPE}, "
             f"{accuracy_dataset.describe()}; {om_inputs.describe()}")
    c = measure_error_rate(gate_record, cid, description, report, basis, accuracy_reference, accuracy_artifact_dir,
                            accuracy_dataset.root, batch_size=batch_size, npu_results=str(npu_evidence.root),
                            source_kind=npu_evidence.kind, inputs_check=om_inputs.status,
                            dataset="synthetic" if accuracy_dataset.synthetic else "LUNA16")
    # The OM's weights are whatever the host converted; only the data decides whether the figure means anything
    # (live, the OM is built from the gate's checkpoint, so stand-in weights make it meaningless too).
    not_judged = not_judged_reason(uses_real_weights or npu_evidence.kind == "replay", accuracy_dataset.synthetic)
    if not_judged:
        c.skip(f"{not_judged} (measured {report.result.error_rate_pct:.4f} %)")
    c.assert_passed(failure_line(cid, report, accuracy_reference))


@pytest.mark.criterion("om.tiles_in_place", "every OM output file holds its own tile's output")
def test_om_tiles_in_place(batch_size, npu_evidence, om_inputs, accuracy_runs, accuracy_dataset, uses_real_weights,
                           gate_record):
    """All tiles, no reference run: an output that fits another tile's mask far better than its own sits under
    the wrong name (swapped files, outputs matched by position) - the pooled error rate barely moves for a few
    such tiles. Needs a model that segments; with stand-in weights (live) nothing fits any mask, so not judged."""
    from vnet_accept.results.criteria import placement_message

    cid = f"om.tiles_in_place.bs{batch_size}"
    description = f"no OM output at bs{batch_size} fits another tile's mask far better than its own"
    batch = _results(npu_evidence, batch_size, gate_record, cid, description)
    c = gate_record.criterion(cid, description, units="tiles misplaced", threshold="0", basis=str(batch.folder))
    try:
        batch.outputs(_labels(accuracy_dataset))
        if om_inputs.status == "differ":  # outputs of other inputs fit no mask: that is om.inputs_match's verdict
            raise DataError(om_inputs.describe())
        report = accuracy_runs.postprocess(batch.folder, keep_predictions=True)
    except DataError as exc:
        c.measure(None, False, reason=str(exc).splitlines()[0])
        pytest.fail(str(exc), pytrace=False)
    misplaced = report.misplaced or ()
    message = placement_message(misplaced)
    c.measure(len(misplaced), not misplaced, reason=message.splitlines()[0],
              misplaced=[m.line() for m in misplaced])
    if not (uses_real_weights or npu_evidence.kind == "replay"):
        c.skip("the OM was built from seeded stand-in weights, whose outputs fit no mask; pass --vnet-weights "
               f"(measured {len(misplaced)} misplaced)")
    c.assert_passed(message)


# --- OM vs ONNX, tile by tile ----------------------------------------------------------------------------------------

@pytest.mark.criterion("om.parity", "the OM's outputs equal ONNX Runtime's within the fp16 limits, tile by tile")
def test_om_parity(batch_size, npu_evidence, om_inputs, om_reference_onnx, accuracy_dataset, npu_settings,
                   artifact_cache, gate_record):
    from vnet_accept.ascend.references import graph_bn_mode, reference_groups, reference_outputs
    from vnet_accept.results.layouts import read_output

    cid = f"om.parity.om_vs_onnx.bs{batch_size}"
    tolerance = om_tolerance(npu_settings.om_max_flip_fraction)
    description = (f"the OM at bs{batch_size} ({OM_DTYPE}) equals ONNX Runtime (fp32) on each of the first "
                   f"{npu_settings.parity_tiles} tiles: {tolerance.describe()}")
    batch = _results(npu_evidence, batch_size, gate_record, cid, description)
    onnx, onnx_description = om_reference_onnx
    mode = graph_bn_mode(onnx)
    c = gate_record.criterion(cid, description, units="RED (worst tile)", threshold=tolerance.describe())
    labels = _labels(accuracy_dataset)
    outputs = _outputs(batch, labels, c)
    _stop_on_wrong_inputs(om_inputs, c)
    stems = [e.stem for e in accuracy_dataset.manifest.entries if e.stem in outputs][:npu_settings.parity_tiles]
    groups = reference_groups(stems, mode, batch.plan)
    if not groups:
        c.measure(None, False, reason=f"no tile of bs{batch_size} lies in a complete batch of {batch.plan.source}; "
                  "a batch-statistics ONNX has no reference for a padded batch")
        c.assert_passed()
    reference = reference_outputs(onnx, accuracy_dataset.manifest, groups, artifact_cache)
    om = {s: read_output(outputs[s]) for s in reference}
    verdict = om_parity(om, reference, labels, batch_size, tolerance)
    company = (f"; ONNX Runtime ran the OM's batches ({batch.plan.source})" if mode == "batch" else "")
    c.criterion.basis = (f"OM bs{batch_size} [{OM_DTYPE}, npu, {npu_evidence.kind}] vs {onnx_description} "
                         f"[onnxrt-cpu, fp32, bn_mode={mode or 'unknown'}], {len(reference)} tiles{company}")
    c.artifact("onnx", onnx)
    c.measure(verdict.worst.result.red, verdict.passed, reason=verdict.explanation(), reference_bn_mode=mode,
              **verdict.criterion_details())
    c.assert_passed(verdict.explanation() + "\n" + verdict.worst.result.report())


# --- OM batch invariance ---------------------------------------------------------------------------------------------

@pytest.mark.criterion("om.batch_invariance", "the OM gives every tile the same labels at bs1 and bs<N>")
def test_om_batch_invariance(larger_batch_size, npu_evidence, om_inputs, accuracy_dataset, npu_settings,
                             gate_record):
    from vnet_accept.results.layouts import map_output

    bs = larger_batch_size
    limit = npu_settings.om_invariance_max_flip_fraction
    cid = f"om.batch_invariance.bs1_vs_bs{bs}"
    description = (f"each tile's labels from the OM at bs{bs} equal those at bs1 (at most {limit:g} of the voxels "
                   "differ)")
    labels = _labels(accuracy_dataset)
    one = _results(npu_evidence, 1, gate_record, cid, description)
    other = _results(npu_evidence, bs, gate_record, cid, description)
    c = gate_record.criterion(cid, description, units="label flip fraction", threshold=f"≤ {limit:g}")
    out1, outn = _outputs(one, labels, c), _outputs(other, labels, c)
    stems = [e.stem for e in accuracy_dataset.manifest.entries if e.stem in out1 and e.stem in outn]
    pairs = ((labels[s], map_output(out1[s]), map_output(outn[s])) for s in stems)
    verdict = om_batch_invariance(pairs, bs, limit)
    c.criterion.basis = (f"OM bs1 vs bs{bs} [{OM_DTYPE}, npu, {npu_evidence.kind}], {verdict.tiles} tiles "
                         f"({one.folder.name} vs {other.folder.name})")
    c.measure(verdict.flip_fraction, verdict.passed, reason=verdict.explanation(), **verdict.criterion_details())
    c.assert_passed(verdict.explanation())


# --- which BN semantics the OM implements ----------------------------------------------------------------------------

@pytest.mark.criterion("om.bn_semantics", "the OM's outputs are clearly closest to one BN semantics")
def test_om_bn_semantics(npu_evidence, om_inputs, npu_settings, onnx_export, vnet_checkpoint, accuracy_dataset,
                         artifact_cache, uses_real_weights, gate_record):
    from vnet_accept.ascend.references import reference_groups, reference_outputs
    from vnet_accept.results.layouts import read_output

    margin = npu_settings.bn_semantics_margin
    description = ("which BN semantics the OM implements: its outputs for one batch against ONNX Runtime under the "
                   f"batch, instance and running exports of the checkpoint; a clear winner is {margin:g}× closer "
                   "(RED) than the runner-up")
    if npu_evidence.kind == "replay" and not uses_real_weights:
        gate_record.skip("om.bn_semantics", description, "the OM is compared with exports of the checkpoint it was "
                         "built from: pass --vnet-weights (that checkpoint)")
    c = gate_record.criterion("om.bn_semantics", description, units="BN semantics",
                              threshold=f"runner-up ≥ {margin:g}× farther (relative Euclidean distance)")
    _stop_on_wrong_inputs(om_inputs, c)
    labels = _labels(accuracy_dataset)
    chosen = None
    for bs in sorted(set(npu_settings.batch_sizes), key=lambda b: (b == 1, b)):  # smallest bs > 1 first, bs1 last
        try:
            batch = npu_evidence.batch(bs)
            outputs = batch.outputs(labels)
        except (DataError, ToolError):
            continue
        complete = [b for b in batch.plan.complete_batches() if all(s in outputs for s in b)]
        if complete:
            chosen = (bs, batch, outputs, complete[0])
            break
    if chosen is None:
        c.measure(None, False, reason="no complete OM batch with all its outputs at any of --batch-sizes "
                  f"{', '.join(map(str, npu_settings.batch_sizes))}")
        c.assert_passed()
    bs, batch, outputs, stems = chosen
    references = {}
    for mode in BN_CANDIDATES:
        groups = reference_groups(stems, mode, batch.plan)
        computed = reference_outputs(onnx_export(mode), accuracy_dataset.manifest, groups, artifact_cache)
        references[mode] = np.stack([computed[s] for s in stems])
    om = np.stack([read_output(outputs[s]) for s in stems])
    finding = bn_semantics(om, references, bs, margin, om_tolerance(npu_settings.om_max_flip_fraction))
    assumed = " (batch composition assumed)" if batch.plan.assumed else ""
    c.criterion.basis = (f"OM bs{bs} [{OM_DTYPE}, npu, {npu_evidence.kind}] on one batch of {len(stems)} tiles "
                         f"({batch.plan.source}{assumed}) vs onnxrt-cpu fp32 exports of {vnet_checkpoint.describe()}")
    measured = finding.closest if finding.clear else f"ambiguous ({finding.closest}/{finding.runner_up})"
    c.measure(measured, finding.clear, reason=finding.explanation(), tile_labels=[labels[s] for s in stems],
              plan_assumed=batch.plan.assumed, **finding.criterion_details())
    c.assert_passed(finding.explanation())


# --- throughput ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def perf_judgement(npu_evidence, npu_settings, npu_card, t4_thresholds):
    evidence = npu_evidence.perf(npu_settings.batch_sizes, npu_settings.statistic)
    judgement = judge_perf(evidence.chosen, t4_thresholds, npu_card.chips_per_card, npu_card.soc_version,
                           npu_settings.batch_sizes, evidence.chosen_kind)
    return judgement, evidence


@pytest.mark.criterion("perf.throughput", "the card's fps beats the T4's at this batch size")
def test_throughput(batch_size, perf_judgement, npu_card, npu_evidence, gate_record):
    judgement, evidence = perf_judgement
    v = judgement.verdicts[batch_size]
    cid = f"perf.throughput.bs{batch_size}"
    description = (f"card fps (per-chip fps × {npu_card.chips_per_card} chips) > T4 fps at bs{batch_size}")
    if npu_card.basis_problem:  # a contradicted multiplier fails whatever the numbers (vnet_accept.perf.card_basis)
        threshold = f"> T4 {v.t4_fps:.5g} fps" if v.t4_fps else "> T4 fps"
        c = gate_record.criterion(cid, description, units="fps per card", threshold=threshold,
                                  basis=f"{v.npu_basis} per-chip figure × {npu_card.chips_per_card} chips "
                                  f"({npu_card.source})")
        c.measure(v.card_fps, False, reason=npu_card.basis_problem)
        c.assert_passed(npu_card.basis_problem)
    if v.passed is None and batch_size in evidence.failures:  # a live run that could not measure it
        c = gate_record.criterion(cid, description, units="fps per card", basis=npu_evidence.describe())
        c.measure(None, False, reason=evidence.failures[batch_size])
        c.assert_passed()
    if v.passed is None:
        why = (
            f"no NPU figure for bs{batch_size} in {npu_evidence.root} (expected perf/ from a pure-inference sweep, "
            f"result_bs{batch_size}_summary.json or bs{batch_size}/result/perf_vision_batchsize_{batch_size}"
            "_device_<id>.txt)" if v.chip_fps is None else "no T4 threshold at this batch size (pass --t4-logs)")
        gate_record.skip(cid, description, f"{v.explanation}; {why}")
    c = gate_record.criterion(cid, description, units="fps per card",
                              threshold=f"> T4 {v.t4_fps:.5g} fps ({v.t4_basis} GPU compute)",
                              basis=f"{v.npu_basis} per-chip figure × {npu_card.chips_per_card} chips "
                              f"({npu_card.source}); {judgement.kinds.get(batch_size)} figures; T4 from {v.t4_source}")
    c.measure(v.card_fps, v.passed, reason=v.explanation, **judgement.details(batch_size))
    c.assert_passed(v.explanation)


@pytest.mark.criterion("perf.tier", "placement tier from the card/T4 ratios at bs1 and bs16")
def test_placement(perf_judgement, npu_settings, gate_record):
    judgement, _ = perf_judgement
    description = ("placement tier from card/T4 at bs1 and bs16, the lower deciding: < 1.0 Research, 1.0–1.2 "
                   "Official, > 1.2 Benchmark; pass = Official or Benchmark")
    absent = [bs for bs in AUTHORITATIVE_BATCH_SIZES if bs not in npu_settings.batch_sizes]
    if absent:
        gate_record.skip("perf.tier", description, f"the tier is decided at bs1 and bs16; --batch-sizes "
                         f"{','.join(map(str, npu_settings.batch_sizes))} lacks {', '.join(f'bs{b}' for b in absent)}")
    p = judgement.placement
    c = gate_record.criterion("perf.tier", description, units="tier", threshold="Official or Benchmark",
                              basis=f"card fps ({judgement.chips_per_card} chips) vs T4 at bs1 and bs16")
    c.measure(p.tier, p.tier in TIER_NAMES[1:], reason=p.explanation, explanation=p.explanation,
              **p.criterion_details())
    c.assert_passed(p.explanation)


@pytest.mark.criterion("perf.rule_310p", "a 310P card is ≥ 1.2 × the 310 card and ≥ 1.6 × the T4")
def test_rule_310p(perf_judgement, npu_card, gate_record):
    judgement, _ = perf_judgement
    description = "310P rule: card fps ≥ 1.2 × the port's Ascend 310 card and ≥ 1.6 × the T4, at every batch size"
    if not (npu_card.soc_version or "").lower().startswith("ascend310p"):
        gate_record.skip("perf.rule_310p", description, f"applies to Ascend310P cards; this is "
                         f"{npu_card.soc_version or 'an unknown SoC'} ({npu_card.source})")
    rules = judgement.rule_310p
    if not rules:
        gate_record.skip("perf.rule_310p", description, "no batch size has both a 310P card figure and a T4 threshold")
    failed = [r for r in rules if not r.passed]
    c = gate_record.criterion("perf.rule_310p", description, units="batch sizes failing", threshold="0",
                              basis="card fps (1 chip) vs the port's 310 card figures (SPEC §7) and the T4")
    reason = "; ".join(r.explanation for r in (failed or rules))
    c.measure(len(failed), not failed, reason=reason, verdicts=[r.to_dict() for r in rules])
    c.assert_passed(reason)
