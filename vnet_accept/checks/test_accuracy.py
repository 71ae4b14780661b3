"""Accuracy: the error rate of the chain export -> preprocess -> infer -> post-process, and its consistency (SPEC §6).

``accuracy.error_rate.<source>`` judges |error - ``--reference-error``| <= ``--tolerance-pp`` points when the
checkpoint (``--vnet-weights``) and the data (``--luna16-root``) are real; with the seeded stand-ins it still
measures and records everything, and the threshold is a skip saying why. The consistency criteria are real
pass/fail on any data: the pooled counts are the sums of the per-volume and per-tile counts, the printed line
parses back, the three layouts give identical counts, batch 1 and batch 16 give the same per-tile counts (for
the BN modes that promise it), and ONNX Runtime and PyTorch agree up to their label flips.
``accuracy.error_rate.selftest_model`` runs the same chain with the self-test's trained narrow VNet on the synthetic
dataset and holds it to the self-test's threshold (a real number without the port's checkpoint).
``accuracy.error_rate.om_bs<N>`` (OM outputs, live or copied from an Ascend host with ``--npu-results``) are
recorded by ``test_npu.py`` with the same helpers (:mod:`vnet_accept.results.criteria`).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vnet_accept.compare import label_flips, max_abs_diff
from vnet_accept.judge import accuracy
from vnet_accept.judge.criterion import judged
from vnet_accept.metrics.accuracy import parse_port_line
from vnet_accept.plugin.accuracy_fixtures import INVARIANCE_BATCH, source_name
from vnet_accept.tolerances import SELFTEST_MAX_ERROR_PCT

pytestmark = pytest.mark.accuracy

INVARIANT_MODES = ("running", "instance")


@pytest.mark.criterion("accuracy.error_rate", "the chain's pooled error rate is within the rule")
def test_error_rate(accuracy_runs, accuracy_dataset, accuracy_reference, accuracy_artifact_dir, uses_real_weights,
                    gate_record):
    from vnet_accept.results.postprocess import save_volume_npz

    run = accuracy_runs.chain()
    report = accuracy_runs.chain_report()
    inf = run.inference
    throughput = {"backend": run.backend, "tiles_per_s": inf.tiles_per_s, "backend_tiles_per_s":
                  inf.backend_tiles_per_s, "gflop_per_s": inf.gflop_per_s, "gflop_per_tile": inf.gflop_per_tile,
                  "width": inf.width, "batch_size": run.batch_size}
    cid = f"accuracy.error_rate.{source_name(run.backend)}"
    npz = save_volume_npz(accuracy_artifact_dir / f"{cid.replace('.', '_')}_worst_volume.npz", report,
                          report.result.worst_volume().uid, accuracy_dataset.root)
    gate_record.record(accuracy.error_rate(
        cid, f"pooled voxel error rate of {run.backend} over the test split", report, accuracy_reference,
        basis=f"{run.basis}, bs{run.batch_size}, fp32, {accuracy_dataset.describe()}", worst_npz=npz,
        not_judged=accuracy.not_judged_reason(uses_real_weights, accuracy_dataset.synthetic), throughput=throughput,
        dataset="synthetic" if accuracy_dataset.synthetic else "LUNA16"), ("worst_volume", npz),
        *accuracy_runs.onnx_artifacts(run))


@pytest.mark.criterion("accuracy.consistency.pooled_counts", "pooled = Σ per volume = Σ per tile")
def test_pooled_counts_are_the_sums(accuracy_runs, accuracy_dataset, gate_record):
    from vnet_accept.data.prepare import load_normalized_mask
    from vnet_accept.data.tiles import coverage

    report = accuracy_runs.chain_report()
    r, acc = report.result, report.accumulator
    problems = []
    manifest = accuracy_dataset.manifest
    if (r.incorrect, r.total) != (sum(v.incorrect for v in r.per_volume), sum(v.total for v in r.per_volume)):
        problems.append("pooled counts differ from the sum over volumes")
    if r.tiles != len(manifest) or r.total != len(manifest) * 409_600:
        problems.append(f"{r.tiles} tiles / {r.total} voxels scored, the manifest has {len(manifest)} tiles")
    with_tiles = [uid for uid in manifest.uids if any(e.uid == uid for e in manifest.entries)]
    if [v.uid for v in r.per_volume] != with_tiles:
        problems.append("the volumes scored are not the manifest's scans with tiles, in order")
    if any(n != 1 for n in report.mask_reads.values()):
        problems.append(f"masks decoded more than once: {report.mask_reads}")
    for v in r.per_volume:  # the reassembled volume, voxel by voxel, gives the per-volume counts
        prediction = acc.prediction_volume(v.uid).astype(bool)
        evaluated = coverage(v.tiles).astype(bool)
        mask = load_normalized_mask(accuracy_dataset.root, v.uid)
        wrong = int(np.count_nonzero((prediction != mask) & evaluated))
        if wrong != v.incorrect:
            problems.append(f"{v.uid}: reassembled volume has {wrong} errors, the tiles sum to {v.incorrect}")
    gate_record.record(judged(
        "accuracy.consistency.pooled_counts", "the pooled counts equal the sum of the per-volume counts, the per-tile "
        "counts and the reassembled volumes' counts", not problems, measured=len(problems), units="problems",
        threshold="0", basis=f"{accuracy_runs.chain().basis} over {accuracy_dataset.describe()} ({report.source})",
        problems=problems,
        reason="; ".join(problems) or f"{r.incorrect}/{r.total} over {r.volumes} volumes and {r.tiles} tiles"),
        *accuracy_runs.onnx_artifacts(accuracy_runs.chain()))


@pytest.mark.criterion("accuracy.consistency.port_line", "the printed line parses back to the same numbers")
def test_printed_line_parses_back(accuracy_runs, gate_record):
    """What ``vnet-accept postprocess`` prints (:meth:`PostprocessReport.render`) holds the port's line, and it
    parses back to the pooled counts (the command's own exit status is tested in tests/postprocess)."""
    folder, manifest = accuracy_runs.check_folder()
    report = accuracy_runs.postprocess(folder, manifest=manifest)
    r = report.result
    printed = report.render()
    line = parse_port_line(printed)
    ok = (line.incorrect, line.total) == (r.incorrect, r.total) and line.pct == round(r.error_rate_pct, 4)
    gate_record.record(judged(
        "accuracy.consistency.port_line", "`vnet-accept postprocess` prints the port's line and it parses back to the "
        "pooled counts", ok, measured=next(text for text in printed.splitlines() if text.startswith("Test set")),
        # The folder is temporary: the basis says what it held, not where it was.
        basis=f"the first scan's {len(manifest)} tiles of {accuracy_runs.chain().basis}, written as an ais_bench "
              "result folder and post-processed",
        reason=f"parsed {line}, expected {r.incorrect}/{r.total} ({r.error_rate_pct:.4f}%)"))


@pytest.mark.criterion("accuracy.layouts_agree", "the three result layouts give identical counts")
def test_layouts_agree(accuracy_runs, gate_record, tmp_path):
    from vnet_accept.results.layouts import output_relpath, read_output, write_output

    run = accuracy_runs.chain()
    check, manifest = accuracy_runs.check_folder()
    base = accuracy_runs.postprocess(check, manifest=manifest)
    folders = {"ais_bench": check}
    for layout in ("benchmark", "npy"):
        folders[layout] = tmp_path / layout
        for e in manifest.entries:
            write_output(folders[layout], e.stem, read_output(check / output_relpath(e.stem, "ais_bench")), layout)
    detected, differing = {}, {}
    for layout, folder in folders.items():
        report = accuracy_runs.postprocess(folder, manifest=manifest) if layout != "ais_bench" else base
        detected[layout] = report.folder.layout
        mine, ref = report.result.counts_by_tile(), base.result.counts_by_tile()
        differing[layout] = sorted(f"{k[0]}/{k[1]}" for k in ref if mine.get(k) != ref[k])
        if layout != "ais_bench":
            shutil.rmtree(folder)
    ok = all(detected[k] == k for k in folders) and not any(differing.values())
    gate_record.record(judged(
        "accuracy.layouts_agree", "post-processing the same outputs written as ais_bench (<stem>_0.bin), legacy "
        "benchmark (dumpOutput_device0/<stem>_1.bin) and .npy gives identical per-tile counts, each layout detected",
        ok, measured=sum(map(len, differing.values())), units="tiles differing", threshold="0",
        basis=f"{len(manifest)} tiles (the first scan) of {run.basis}",
        reason=f"detected {detected}; differing {differing}", detected=detected, differing=differing,
        incorrect=base.result.incorrect, total=base.result.total), *accuracy_runs.onnx_artifacts(run))


@pytest.mark.criterion("accuracy.batch_invariance", "bs1 and bs16 give the same per-tile error counts")
def test_batch_invariance(accuracy_runs, accuracy_dataset, gate_record):
    entries = accuracy_dataset.check_entries()
    batched, alone = accuracy_runs.batched_and_alone(entries)
    out_batched, out_alone = accuracy_runs.outputs(batched, entries), accuracy_runs.outputs(alone, entries)
    counts_batched = accuracy_runs.score(entries, out_batched)
    counts_alone = accuracy_runs.score(entries, out_alone)
    differing = {f"{k[0]}/{k[1]}": [counts_alone[k], counts_batched[k]] for k in counts_alone
                 if counts_alone[k] != counts_batched[k]}
    flips = int(label_flips(out_batched, out_alone).sum())
    max_abs = max_abs_diff(out_batched, out_alone)
    size = min(INVARIANCE_BATCH, len(accuracy_dataset.manifest))
    source, mode = source_name(accuracy_runs.backend), accuracy_runs.bn_mode
    summary = (f"{len(differing)} of {len(entries)} tiles differ in error count; {flips} voxels flip label "
               f"(max |Δ log-prob| {max_abs:.3g})")
    c = judged(f"accuracy.batch_invariance.{source}.bs1_vs_bs{INVARIANCE_BATCH}", f"the first scan's {len(entries)} "
               f"tiles give the same error counts run one at a time and inside a batch of {size}", not differing,
               measured=len(differing), units="tiles with different counts", threshold="0",
               basis=f"{alone.basis}, bn_mode={mode}, {accuracy_dataset.describe()}", reason=summary,
               tiles=len(entries), voxels_differing=flips, max_abs_diff=max_abs, tiles_differing=differing,
               batch_size=size, counts_bs1=sum(counts_alone.values()),
               **{f"counts_bs{INVARIANCE_BATCH}": sum(counts_batched.values())})
    if mode not in INVARIANT_MODES:
        c = c.not_judged(f"bn_mode={mode} normalises with the batch's statistics and promises no batch invariance; "
                         f"measured: {summary}")
    gate_record.record(c, *accuracy_runs.onnx_artifacts(alone))


@pytest.mark.criterion("accuracy.consistency.backends_agree", "ONNX Runtime and PyTorch give the same error "
                       "counts up to their label flips")
def test_backends_agree(accuracy_runs, accuracy_dataset, gate_options, gate_record):
    entries = accuracy_dataset.check_entries()
    mine = accuracy_runs.alone(entries)
    other = accuracy_runs.in_memory(accuracy_runs.other_backend, 1, entries)
    a, b = accuracy_runs.outputs(mine, entries), accuracy_runs.outputs(other, entries)
    counts_a, counts_b = accuracy_runs.score(entries, a), accuracy_runs.score(entries, b)
    flips_per_tile = label_flips(a, b).reshape(len(entries), -1).sum(axis=1)
    beyond = {f"{e.uid}/{e.tile}": [counts_a[e.key], counts_b[e.key], int(f)]
              for e, f in zip(entries, flips_per_tile) if abs(counts_a[e.key] - counts_b[e.key]) > f}
    flips, voxels = int(flips_per_tile.sum()), a[..., 0].size
    limit = gate_options.parity_max_flip_fraction
    ok = not beyond and flips <= limit * voxels
    ids = sorted(source_name(x) for x in (mine.backend, other.backend))
    gate_record.record(judged(
        f"accuracy.consistency.{ids[0]}_vs_{ids[1]}", f"{mine.backend} and {other.backend} give the same per-tile "
        f"error counts up to their label flips, and flip at most {limit:g} of the voxels", ok, measured=flips,
        units="label flips", threshold=f"≤ {limit:g} × {voxels} voxels",
        basis=f"{mine.basis} vs {other.basis}, bs1, {len(entries)} tiles",
        reason=f"error counts {sum(counts_a.values())} vs {sum(counts_b.values())}; {flips}/{voxels} voxels flip",
        counts=[sum(counts_a.values()), sum(counts_b.values())], beyond_flips=beyond, voxels=voxels),
        *accuracy_runs.onnx_artifacts(mine, other))


@pytest.mark.criterion("accuracy.error_rate.selftest_model", "the self-test's trained model segments the synthetic "
                       "dataset through the accuracy chain")
def test_trained_model_error_rate(accuracy_dataset, accuracy_backend, accuracy_reference, gate_options,
                                  selftest_chain, tmp_path_factory, gate_record, request):
    """The accuracy chain with a model that segments: the self-test's narrow VNet (trained on synthetic seed 1000,
    never on this dataset) must stay within the self-test's threshold here too, so the chain's error rate is
    checked against a real number even without the trained port checkpoint."""
    from vnet_accept.plugin.accuracy_fixtures import AccuracyRuns
    from vnet_accept.runners.registry import create_runner, get_backend
    from vnet_accept.selftest.chain import SELFTEST_BN_MODE

    if not accuracy_dataset.synthetic:
        pytest.skip("the self-test model is trained on synthetic scans; it is judged on the synthetic dataset only "
                    "(run without --luna16-root)")
    checkpoint = selftest_chain.load_checkpoint()

    def make_runner(backend: str):
        if get_backend(backend).needs == "onnx":  # the fixed 64×80×80 export, as ATC gets it
            return create_runner(backend, onnx=selftest_chain.onnx, bn_mode=SELFTEST_BN_MODE)
        return create_runner(backend, model=checkpoint.build_model(SELFTEST_BN_MODE), bn_mode=SELFTEST_BN_MODE)

    runs = AccuracyRuns(accuracy_dataset, accuracy_backend, gate_options.infer_batch_size, SELFTEST_BN_MODE,
                        make_runner, tmp_path_factory.mktemp("accuracy-selftest-model"), accuracy_reference,
                        config=request.config, label="accuracy chain with the self-test's model")
    run = runs.chain()
    gate_record.record(accuracy.error_rate_at_most(
        "accuracy.error_rate.selftest_model", "pooled voxel error rate of the self-test's trained narrow VNet over the "
        "synthetic test split, through the accuracy chain", runs.chain_report(), SELFTEST_MAX_ERROR_PCT,
        basis=f"{run.basis}, bs{run.batch_size}, fp32, bn_mode={SELFTEST_BN_MODE}, {accuracy_dataset.describe()}"),
        ("checkpoint", selftest_chain.checkpoint))
