"""NPU criteria (issue 5): the OM on an Ascend 310/310P, judged on ``--npu-results DIR`` (results and logs copied
from an Ascend host; layout in :mod:`vnet_accept.ascend.results_folder`) or produced here by ATC and
ais_bench/benchmark when CANN is installed. Without both, every test skips naming what is missing.

Per batch size (``--batch-sizes``): ``om.atc.bs<N>`` (exit status 0, the success line, no error code - and here
the OM on disk), ``accuracy.error_rate.om_bs<N>`` (the accuracy rule, through the accuracy gate's own helper),
``om.parity.om_vs_onnx.bs<N>`` (each of ``--om-parity-tiles`` tiles against ONNX Runtime under the fp16 limits of
:mod:`vnet_accept.judge.om`), ``om.batch_invariance.bs1_vs_bs<N>`` (labels), ``perf.throughput.bs<N>``
(card fps = per-chip fps × chips per card vs the T4). Once: ``om.inputs_match`` (the results belong to the
tiles judged), ``om.bn_semantics`` (which BN semantics the OM implements), ``perf.tier`` and ``perf.rule_310p``.
The OM's numbers are fp16 (ATC's default ``force_fp16``) on one chip per device id; every basis says so.
"""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.errors import DataError, ToolError
from vnet_accept.judge import accuracy, om
from vnet_accept.judge.criterion import judged
from vnet_accept.judge.om import BN_CANDIDATES
from vnet_accept.judge.perf import RULE_310P_THRESHOLD, TIER_THRESHOLD, throughput_threshold_in_force
from vnet_accept.plugin.ascend_fixtures import settings_key
from vnet_accept.reference import AUTHORITATIVE_BATCH_SIZES, OM_DTYPE
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
        absent = isinstance(exc, DataError) and str(exc).startswith(f"no bs{bs} results")
        required = not (absent and evidence.kind == "replay" and bs not in AUTHORITATIVE_BATCH_SIZES)
        first = str(exc).splitlines()[0]
        gate_record.record(judged(cid, description, False if required else None, basis=evidence.describe(),
                                  reason=f"required, not measured: {first}" if required else str(exc),
                                  message=f"FAIL required, not measured: {exc}" if required else str(exc)))


@pytest.fixture(scope="session")
def om_inputs(npu_evidence, gate_options, request):
    """Whether the results belong to the tiles judged. Results copied from a host were cut from LUNA16 there: the
    synthetic stand-in dataset cannot match them, so without ``--luna16-root`` the tests that need tiles skip."""
    from vnet_accept.ascend.results_folder import check_inputs

    if npu_evidence.kind == "replay" and not gate_options.luna16_root:
        pytest.skip("results copied from an Ascend host are judged against the tiles they were computed from: pass "
                    "--luna16-root (the LUNA16 the host's tiles were cut from) and --test-uids")
    return check_inputs(npu_evidence.results, request.getfixturevalue("accuracy_dataset").manifest)


def _outputs(batch, labels: dict[str, str], gate_record, cid: str, description: str) -> dict:
    """``{stem: output file}`` of a batch size, or the criterion fails naming the bad files (off-by-one output
    index, wrong sizes, duplicates, tiles not in the manifest)."""
    __tracebackhide__ = True
    try:
        return batch.outputs(labels)
    except DataError as exc:
        gate_record.record(accuracy.unreadable(cid, description, exc, basis=str(batch.folder)))


def _stop_on_wrong_inputs(om_inputs, gate_record, cid: str, description: str) -> None:
    __tracebackhide__ = True
    if om_inputs.status == "differ":
        gate_record.record(judged(cid, description, False, reason=om_inputs.describe(),
                                  message=f"FAIL {om_inputs.describe()}"))


@pytest.fixture(scope="session")
def om_reference_onnx(npu_evidence, npu_settings, gate_options, onnx_export, uses_real_weights, vnet_checkpoint):
    """The ONNX the OM is compared with: the one the OMs were converted from - ``--onnx``, else the results folder's
    one ``*.onnx`` (``npu_settings.onnx``: two, or one that is not ``--onnx``, stopped the session at start-up), else
    the gate's own export that a live run converted - as ``(path, description)``."""
    from vnet_accept.ascend.onnx_choice import file_sha256

    if npu_settings.onnx is not None:
        source = "--onnx" if gate_options.onnx else "the results folder's ONNX"
        return npu_settings.onnx, f"{npu_settings.onnx} ({source}, sha256 {file_sha256(npu_settings.onnx)[:12]}…)"
    if npu_evidence.reference_onnx is not None:
        return npu_evidence.reference_onnx, f"{npu_evidence.reference_onnx.name} from the results folder"
    if npu_evidence.kind == "replay" and not uses_real_weights:
        pytest.skip("the OM is compared with the ONNX it was converted from: pass --onnx FILE (that ONNX), put it in "
                    "the --npu-results folder, or pass --vnet-weights (the checkpoint it was exported from) so the "
                    "gate exports it")
    return (onnx_export(gate_options.bn_mode),
            f"the gate's export (bn_mode={gate_options.bn_mode}) of {vnet_checkpoint.describe()} (reference export, "
            "no --onnx given)")


def _operator_comparison(root, modules) -> str | None:
    """What msit/ait ``debug compare``'s per-operator CSV in the results folder says (the first operator below the
    cosine threshold, and its VNet module), or None without one."""
    from vnet_accept.ascend.op_compare import find_op_compares, parse_op_compare
    from vnet_accept.judge.localise import module_of_node
    from vnet_accept.tolerances import OP_MIN_COSINE

    found = find_op_compares(root)
    if not found:
        return None
    try:
        comparison = parse_op_compare(found[-1])
    except DataError as exc:
        return str(exc)
    module_of = {}
    for row in comparison.rows:
        module = next((m for part in row.onnx_op.split(",") if (m := module_of_node(part.strip(), modules))), None)
        if module:
            module_of[row.onnx_op] = module
    return comparison.describe(OP_MIN_COSINE, module_of)


# --- conversion -----------------------------------------------------------------------------------------------------

@pytest.mark.criterion("om.atc.bs{batch_size}", "ATC converts the ONNX into an OM at this batch size",
                        threshold=om.ATC_THRESHOLD, units="exit status")
def test_atc_conversion(batch_size, npu_evidence, gate_record):
    record = npu_evidence.atc(batch_size)
    if record is None:
        gate_record.skip(f"om.atc.bs{batch_size}", f"ATC converts the ONNX into an OM for bs{batch_size}",
                         f"no ATC console for bs{batch_size} in {npu_evidence.root} (expected atc_bs{batch_size}.log: "
                         f"`atc … > atc_bs{batch_size}.log 2>&1; echo \"ATC exit status $?\" >> "
                         f"atc_bs{batch_size}.log`)")
    om_path = npu_evidence.om_path(batch_size)
    gate_record.record(om.atc(record, batch_size, live=npu_evidence.kind == "live", om=om_path),
                       *((("om", om_path),) if om_path else ()))


# --- the results belong to the tiles judged --------------------------------------------------------------------------

@pytest.mark.criterion("om.inputs_match", "the NPU results were computed from the tiles the gate judges with",
                        threshold="0", units="tiles differing")
def test_inputs_match(npu_evidence, om_inputs, accuracy_dataset, gate_record):
    gate_record.record(om.inputs_match(om_inputs, basis=f"{om_inputs.source} vs {accuracy_dataset.describe()}",
                                       folder_problems=npu_evidence.results.problems,
                                       folder_notes=npu_evidence.results.notes))


# --- accuracy of the OM outputs --------------------------------------------------------------------------------------

def _om_report_of(accuracy_runs, om_inputs, batch, labels):
    """The post-processing of an OM result folder (memoised, predictions kept): the folder's own defects first
    (names, sizes, duplicates), then results computed from other inputs (``om.inputs_match`` names them)."""
    def report_of(folder):
        batch.outputs(labels)
        if om_inputs.status == "differ":
            raise DataError(om_inputs.describe())
        return accuracy_runs.postprocess(folder, keep_predictions=True)

    return report_of


@pytest.mark.criterion(
    "accuracy.error_rate.om_bs{batch_size}",
    "the OM's pooled error rate is within the accuracy rule", threshold=accuracy.rule_threshold, units="%")
def test_om_error_rate(batch_size, npu_evidence, om_inputs, accuracy_runs, accuracy_dataset, accuracy_reference,
                       accuracy_artifact_dir, uses_real_weights, gate_record):
    from vnet_accept.results.postprocess import save_volume_npz

    cid = f"accuracy.error_rate.om_bs{batch_size}"
    description = f"pooled voxel error rate of the OM at bs{batch_size} over the test split"
    batch = _results(npu_evidence, batch_size, gate_record, cid, description)
    # The OM's weights are whatever the host converted; only the data decides whether the figure means anything
    # (live, the OM is built from the gate's checkpoint, so stand-in weights make it meaningless too).
    not_judged = accuracy.not_judged_reason(uses_real_weights or npu_evidence.kind == "replay",
                                            accuracy_dataset.synthetic)
    report_of = _om_report_of(accuracy_runs, om_inputs, batch, _labels(accuracy_dataset))
    basis = f"{batch.folder} ({batch.layout}), OM bs{batch_size}, {OM_DTYPE}, {accuracy_dataset.describe()}; " \
            f"{om_inputs.describe()}"
    c = accuracy.results_error_rate(cid, description, batch.folder, report_of, accuracy_reference, basis=basis,
                                    not_judged=not_judged, batch_size=batch_size, npu_results=str(npu_evidence.root),
                                    source_kind=npu_evidence.kind, inputs_check=om_inputs.status,
                                    dataset="synthetic" if accuracy_dataset.synthetic else "LUNA16")
    artifacts = ()
    if c.measured is not None:  # the folder was judged: keep the worst volume's picture with the report
        report = report_of(batch.folder)
        npz = save_volume_npz(accuracy_artifact_dir / f"{cid.replace('.', '_')}_worst_volume.npz", report,
                              report.result.worst_volume().uid, accuracy_dataset.root)
        c.details["worst_volume"] = accuracy.error_rate_details(report, "port", npz)["worst_volume"]
        artifacts = (("worst_volume", npz),)
    gate_record.record(c, *artifacts)


@pytest.mark.criterion("om.tiles_in_place.bs{batch_size}", "every OM output file holds its own tile's output",
                        threshold="0", units="tiles misplaced")
def test_om_tiles_in_place(batch_size, npu_evidence, om_inputs, accuracy_runs, accuracy_dataset, uses_real_weights,
                           gate_record):
    """All tiles, no reference run: an output that fits another tile's mask far better than its own sits under
    the wrong name (swapped files, outputs matched by position) - the pooled error rate barely moves for a few
    such tiles. Needs a model that segments; with stand-in weights (live) nothing fits any mask, so not judged."""
    cid = f"om.tiles_in_place.bs{batch_size}"
    description = f"no OM output at bs{batch_size} fits another tile's mask far better than its own"
    batch = _results(npu_evidence, batch_size, gate_record, cid, description)
    not_judged = None if (uses_real_weights or npu_evidence.kind == "replay") else \
        "the OM was built from seeded stand-in weights, whose outputs fit no mask; pass --vnet-weights"
    report_of = _om_report_of(accuracy_runs, om_inputs, batch, _labels(accuracy_dataset))
    gate_record.record(accuracy.tiles_in_place(cid, description, batch.folder, report_of,
                                               basis=str(batch.folder), not_judged=not_judged))


# --- OM vs ONNX, tile by tile ----------------------------------------------------------------------------------------

def _references(config, description: str, onnx, manifest, groups, cache) -> dict:
    """:func:`~vnet_accept.ascend.references.reference_outputs` with a progress line (tiles done, and the elapsed
    time while ONNX Runtime computes a tile: seconds each on a CPU)."""
    from vnet_accept.ascend.references import reference_outputs
    from vnet_accept.plugin.progress import progress

    with progress(config, description, total=sum(len(g) for g in groups), unit="tile") as bar, \
            bar.running("ONNX Runtime (CPU, fp32)"):
        return reference_outputs(onnx, manifest, groups, cache, progress=lambda n: bar.update(n))


@pytest.mark.criterion(
    "om.parity.om_vs_onnx.bs{batch_size}",
    "the OM's outputs equal ONNX Runtime's within the fp16 limits, tile by tile", threshold=om.parity_threshold,
    units="RED (worst tile)")
def test_om_parity(batch_size, npu_evidence, om_inputs, om_reference_onnx, accuracy_dataset, npu_settings,
                   artifact_cache, vnet_model, gate_record, pytestconfig):
    from vnet_accept.ascend.references import graph_bn_mode, reference_groups
    from vnet_accept.results.layouts import read_output

    cid = f"om.parity.om_vs_onnx.bs{batch_size}"
    tolerance = om_tolerance(npu_settings.om_max_flip_fraction)
    description = f"the OM at bs{batch_size} ({OM_DTYPE}) equals ONNX Runtime (fp32) on each of the first " \
                  f"{npu_settings.parity_tiles} tiles: {tolerance.describe()}"
    batch = _results(npu_evidence, batch_size, gate_record, cid, description)
    onnx, onnx_description = om_reference_onnx
    mode = graph_bn_mode(onnx)
    labels = _labels(accuracy_dataset)
    outputs = _outputs(batch, labels, gate_record, cid, description)
    _stop_on_wrong_inputs(om_inputs, gate_record, cid, description)
    stems = [e.stem for e in accuracy_dataset.manifest.entries if e.stem in outputs][:npu_settings.parity_tiles]
    groups = reference_groups(stems, mode, batch.plan)
    if not groups:
        gate_record.record(judged(cid, description, False, threshold=tolerance.describe(), reason=(
            f"no tile of bs{batch_size} lies in a complete batch of {batch.plan.source}; a batch-statistics ONNX has "
            "no reference for a padded batch")))
    reference = _references(pytestconfig, f"om.parity bs{batch_size}: ONNX Runtime references", onnx,
                            accuracy_dataset.manifest, groups, artifact_cache)
    company = (f"; ONNX Runtime ran the OM's batches ({batch.plan.source})" if mode == "batch" else "")
    basis = (f"OM bs{batch_size} [{OM_DTYPE}, npu, {npu_evidence.kind}] vs {onnx_description} "
             f"[onnxrt-cpu, fp32, bn_mode={mode or 'unknown'}], {len(reference)} tiles{company}")
    gate_record.record(om.parity({s: read_output(outputs[s]) for s in reference}, reference, labels, batch_size,
                                 tolerance, basis=basis, tiles_asked=npu_settings.parity_tiles,
                                 operators=_operator_comparison(npu_evidence.root, dict(vnet_model.named_modules())),
                                 reference_bn_mode=mode), ("onnx", onnx))


# --- OM batch invariance ---------------------------------------------------------------------------------------------

@pytest.mark.criterion(
    "om.batch_invariance.bs1_vs_bs{larger_batch_size}",
    "the OM gives every tile the same labels at bs1 and bs<N>", threshold=om.batch_invariance_threshold,
    units="label flip fraction")
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
    out1 = _outputs(one, labels, gate_record, cid, description)
    outn = _outputs(other, labels, gate_record, cid, description)
    stems = [e.stem for e in accuracy_dataset.manifest.entries if e.stem in out1 and e.stem in outn]
    pairs = ((labels[s], map_output(out1[s]), map_output(outn[s])) for s in stems)
    gate_record.record(om.batch_invariance(pairs, bs, limit, basis=f"OM bs1 vs bs{bs} [{OM_DTYPE}, npu, "
                                           f"{npu_evidence.kind}] ({one.folder.name} vs {other.folder.name})"))


# --- which BN semantics the OM implements ----------------------------------------------------------------------------

@pytest.mark.criterion("om.bn_semantics", "the OM's outputs are clearly closest to one BN semantics",
                        threshold=om.bn_semantics_threshold, units="BN semantics")
def test_om_bn_semantics(npu_evidence, om_inputs, npu_settings, onnx_export, vnet_checkpoint, accuracy_dataset,
                         artifact_cache, uses_real_weights, gate_record, pytestconfig):
    from vnet_accept.ascend.references import reference_groups
    from vnet_accept.results.layouts import read_output

    margin = npu_settings.bn_semantics_margin
    description = ("which BN semantics the OM implements: its outputs for one batch against ONNX Runtime under the "
                   f"batch, instance and running exports of the checkpoint; a clear winner is {margin:g}× closer "
                   "(RED) than the runner-up")
    if npu_evidence.kind == "replay" and not uses_real_weights:
        gate_record.skip("om.bn_semantics", description, "the OM is compared with exports of the checkpoint it was "
                         "built from: pass --vnet-weights (that checkpoint)")
    _stop_on_wrong_inputs(om_inputs, gate_record, "om.bn_semantics", description)
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
        gate_record.record(judged("om.bn_semantics", description, False, reason="no complete OM batch with all its "
                                  f"outputs at any of --batch-sizes {', '.join(map(str, npu_settings.batch_sizes))}"))
    bs, batch, outputs, stems = chosen
    references = {}
    for mode in BN_CANDIDATES:
        groups = reference_groups(stems, mode, batch.plan)
        computed = _references(pytestconfig, f"om.bn_semantics: ONNX Runtime references, bn_mode={mode}",
                               onnx_export(mode), accuracy_dataset.manifest, groups, artifact_cache)
        references[mode] = np.stack([computed[s] for s in stems])
    assumed = " (batch composition assumed)" if batch.plan.assumed else ""
    basis = (f"OM bs{bs} [{OM_DTYPE}, npu, {npu_evidence.kind}] on one batch of {len(stems)} tiles "
             f"({batch.plan.source}{assumed}) vs onnxrt-cpu fp32 exports of {vnet_checkpoint.describe()}")
    gate_record.record(om.bn_semantics_criterion(
        np.stack([read_output(outputs[s]) for s in stems]), references, bs, margin,
        om_tolerance(npu_settings.om_max_flip_fraction), basis=basis, tile_labels=[labels[s] for s in stems],
        plan_assumed=batch.plan.assumed))


# --- throughput ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def perf_judgement(npu_evidence, npu_settings, npu_card, t4_thresholds):
    """The one throughput judgement (:func:`vnet_accept.judge.perf.throughput`) of the NPU figures found."""
    from vnet_accept.judge.perf import throughput
    from vnet_accept.perf.rules import REFERENCE_T4_SOURCE

    evidence = npu_evidence.perf(npu_settings.batch_sizes, npu_settings.statistic)
    return throughput([m for ms in evidence.chosen.values() for m in ms], t4_thresholds,
                      soc_version=npu_card.soc_version, soc_source=npu_card.soc_source,
                      chips_per_card=npu_card.chips_given, chips_source="--chips-per-card",
                      batch_sizes=npu_settings.batch_sizes, statistic=npu_settings.statistic,
                      t4_source=", ".join(map(str, npu_settings.t4_logs)) or REFERENCE_T4_SOURCE,
                      kinds=evidence.chosen_kind, failures=evidence.failures,
                      required=[bs for bs in AUTHORITATIVE_BATCH_SIZES if bs in npu_settings.batch_sizes])


@pytest.mark.criterion("perf.throughput.bs{batch_size}", "the card's fps beats the T4's at this batch size",
                        threshold=throughput_threshold_in_force, units="fps per card")
def test_throughput(batch_size, perf_judgement, gate_record):
    gate_record.record(perf_judgement.throughput_criterion(batch_size))


@pytest.mark.criterion("perf.tier", "placement tier from the card/T4 ratios at bs1 and bs16", threshold=TIER_THRESHOLD,
                        units="tier")
def test_placement(perf_judgement, gate_record):
    gate_record.record(perf_judgement.tier_criterion())


@pytest.mark.criterion("perf.rule_310p", "a 310P card is ≥ 1.2 × the 310 card and ≥ 1.6 × the T4",
                        threshold=RULE_310P_THRESHOLD, units="batch sizes failing")
def test_rule_310p(perf_judgement, gate_record):
    gate_record.record(perf_judgement.rule_310p_criterion())
