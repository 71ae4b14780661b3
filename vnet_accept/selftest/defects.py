"""The catalogue of planted defects: each is planted into a copy of a clean artifact and judged by the criterion
meant to catch it (SPEC §9; issue 8).

A defect is *caught* when every criterion it names fails **and** its message names the cause (each expected
fragment appears in the message, the first one in its first line - what pytest's short summary shows). The
clean chain must pass every criterion (no false alarm). :func:`mutation_score` states caught / planted.

Which criterion catches what, and why that one:

== ========================================= ================================================================
#  defect                                    criterion (and the evidence it uses)
== ========================================= ================================================================
1  two tiles' outputs swapped on disk        results.match_reference: each output against the reference run for
                                             the *same (UID, tile)*; the swap is named. Pooled accuracy would
                                             only move by a few tiles' worth of voxels. And the gate's
                                             accuracy.tiles_in_place: each swapped output fits the other tile's
                                             mask far better than its own (no reference run needed).
2  output index off by one (both ways)       accuracy.results_valid: the layout (ais_bench summary beside the
                                             folder / dumpOutput_device<id>) fixes the index, every file is named
3  wrong input scaling                       data.inputs_match_manifest (recomputed tiles; the constants implied
                                             are stated) and accuracy.error_rate (the trained model fails)
4  tile volume written with axes transposed  data.inputs_match_manifest (the axis order is stated) and
                                             accuracy.error_rate
5  last UID of the split dropped             data.uid_coverage: the split read robustly vs the scans used; the
                                             missing last line without a final newline is named
6  port-style training-form BN export        export.batch_invariant: graph inspection and bs1-vs-batch outputs
7  NaN in one output / one output truncated  accuracy.results_valid: the file and its (UID, tile) are named
8  one weight tensor perturbed before export parity.onnxrt_vs_torch against the checkpoint
9  per-chip fps reported per card (and a     perf.throughput: chips per card checked against the SoC before any
   figure multiplied by 4 again)             card figure is compared with the T4
10 ``module.`` stripped from some keys       checkpoint.loads_strictly: strict loading refuses mixed key styles
== ========================================= ================================================================
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.selftest.catchers import (
    Judgement,
    judge_batch_invariance,
    judge_checkpoint,
    judge_inputs,
    judge_parity,
    judge_per_tile,
    judge_results,
    judge_throughput,
    judge_uid_coverage,
)
from vnet_accept.selftest.chain import RESULT_DIRNAME, SELFTEST_BN_MODE, CleanChain, infer_results, prepare_tiles

#: The seeded CT-like samples of the reduced-size batch-invariance check (N, 1, D, H, W).
INVARIANCE_SAMPLES = (4, (16, 32, 32))
INVARIANCE_SEED = 8
#: The tiles swapped by defect 1 (of the first scan): far apart in the volume, both full of lung.
SWAPPED_TILES = (1, 6)
#: The weight tensor perturbed by defect 8 and the relative size of the perturbation (1 % of its RMS).
PERTURBED_TENSOR = "up_tr64.ops.0.conv1.weight"
PERTURBATION = 0.01
#: Defect 3's scaling: min-max of the HU window to [0, 1] instead of the port's mean/std.
WRONG_SHIFT, WRONG_SCALE = 1000.0, 1400.0
REFERENCE_NAME = f"torch-cpu, bn_mode={SELFTEST_BN_MODE}, the same checkpoint"


@dataclass(frozen=True)
class Defect:
    """One planted defect. ``expect`` maps each criterion meant to catch it to the fragments its message must
    contain (the first in the first line). ``plant`` plants it into a copy under a work folder and returns the
    judgements of those criteria."""

    number: str
    id: str
    title: str
    expect: dict[str, tuple[str, ...]]
    plant: Callable[[CleanChain, Path], list[Judgement]]

    @property
    def criteria(self) -> tuple[str, ...]:
        return tuple(self.expect)


@dataclass
class DefectOutcome:
    defect: Defect
    judgements: list[Judgement]
    problems: list[str] = field(default_factory=list)  # why it does not count as caught

    @property
    def caught(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        by_id = {j.criterion: j for j in self.judgements}
        return {"defect": f"{self.defect.number} {self.defect.title}", "id": self.defect.id,
                "criteria": list(self.defect.criteria), "caught": self.caught, "problems": self.problems,
                "messages": {c: by_id[c].first_line if c in by_id else None for c in self.defect.criteria}}


def assess(defect: Defect, judgements: list[Judgement]) -> DefectOutcome:
    """Caught iff each expected criterion was judged, failed, and its message holds the expected fragments."""
    outcome = DefectOutcome(defect, judgements)
    by_id = {j.criterion: j for j in judgements}
    for criterion, fragments in defect.expect.items():
        j = by_id.get(criterion)
        if j is None:
            outcome.problems.append(f"{criterion} was not judged")
            continue
        if j.passed:
            outcome.problems.append(f"{criterion} passed: {j.first_line}")
            continue
        if fragments and fragments[0] not in j.first_line:
            outcome.problems.append(f"{criterion}: first line does not name the cause {fragments[0]!r}: "
                                    f"{j.first_line}")
        absent = [f for f in fragments[1:] if f not in j.message]
        if absent:
            outcome.problems.append(f"{criterion}: message lacks {absent}: {j.first_line}")
    return outcome


# --- helpers -----------------------------------------------------------------------------------------------------

def _copy_results(chain: CleanChain, work: Path) -> Path:
    dst = work / "result"
    shutil.copytree(chain.results, dst)
    return dst


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a new file (never in place: a copy may share storage with the clean one)."""
    path.unlink()
    path.write_bytes(data)


def _output_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}_0.bin"


def _copy_prep(chain: CleanChain, work: Path) -> Path:
    dst = work / "prep_bin"
    shutil.copytree(chain.manifest.directory, dst)
    return dst


def _rewrite_inputs(chain: CleanChain, prep: Path, transform: Callable[[np.ndarray], np.ndarray]) -> Any:
    """Rewrite every ``.bin`` of a prepared-tiles copy with ``transform(tile (64, 80, 80) float32) -> bytes-able
    array`` and record the new checksums in its manifest, as a preprocessing that wrote those inputs would."""
    from vnet_accept.data.prepare import load_manifest, read_input_bin
    from vnet_accept.io_utils import sha256_bytes

    data = json.loads((prep / "manifest.json").read_text())
    for entry in data["entries"]:
        path = prep / entry["file"]
        new = np.ascontiguousarray(transform(read_input_bin(path)), dtype="<f4").tobytes()
        _replace(path, new)
        entry["sha256"] = sha256_bytes(new)
    (prep / "manifest.json").write_text(json.dumps(data, indent=2))
    return load_manifest(prep)


def _chain_error_rate(chain: CleanChain, manifest: Any, work: Path) -> Judgement:
    """The trained model run through the chain on ``manifest``'s tiles (ONNX Runtime), post-processed."""
    folder = infer_results(chain.onnx, manifest, work / "result", chain.bn_mode)
    return judge_results(folder, manifest, chain.dataset_root, chain.uid_file)[1]


def invariance_samples() -> np.ndarray:
    from vnet_accept.data.tiles import ct_like_batch

    n, spatial = INVARIANCE_SAMPLES
    return ct_like_batch(n, spatial, seed=INVARIANCE_SEED)


def _first_tile(chain: CleanChain) -> np.ndarray:
    return chain.manifest.read_input(chain.manifest.entries[0])[None, None]


# --- the defects -------------------------------------------------------------------------------------------------

def plant_swapped_outputs(chain: CleanChain, work: Path) -> list[Judgement]:
    result = _copy_results(chain, work)
    folder = result / RESULT_DIRNAME
    first = chain.manifest.entries[0].uid
    a, b = (chain.manifest.entry(first, k) for k in SWAPPED_TILES)
    pa, pb = _output_path(folder, a.stem), _output_path(folder, b.stem)
    da, db = pa.read_bytes(), pb.read_bytes()
    _replace(pa, db)
    _replace(pb, da)
    return [judge_per_tile(folder, chain.manifest, chain.reference, REFERENCE_NAME),
            *judge_results(folder, chain.manifest, chain.dataset_root, chain.uid_file)]


def plant_index_1_for_0(chain: CleanChain, work: Path) -> list[Judgement]:
    """ais_bench's folder (its summary beside it) holding ``<stem>_1.bin``: the legacy tool's names."""
    result = _copy_results(chain, work)
    folder = result / RESULT_DIRNAME
    for path in sorted(folder.glob("*_0.bin")):
        path.rename(path.with_name(path.name[:-len("_0.bin")] + "_1.bin"))
    (result / f"{RESULT_DIRNAME}_summary.json").write_text(json.dumps(
        {"NPU_compute_time": {"mean": 170.0}, "throughput": 23.5, "args": {"batchsize": 4, "outfmt": "BIN"}}))
    return list(judge_results(folder, chain.manifest, chain.dataset_root, chain.uid_file))


def plant_index_0_for_1(chain: CleanChain, work: Path) -> list[Judgement]:
    """The legacy tool's ``dumpOutput_device0/`` holding ``<stem>_0.bin``: ais_bench's names."""
    result = work / "result"
    shutil.copytree(chain.results / RESULT_DIRNAME, result / "dumpOutput_device0")
    return list(judge_results(result, chain.manifest, chain.dataset_root, chain.uid_file))


def plant_wrong_scaling(chain: CleanChain, work: Path) -> list[Judgement]:
    from vnet_accept.data.tiles import INPUT_SCALE, INPUT_SHIFT

    def rescale(x: np.ndarray) -> np.ndarray:
        hu = x.astype(np.float64) * INPUT_SCALE - INPUT_SHIFT  # the clipped HU the right input came from
        return (hu + WRONG_SHIFT) / WRONG_SCALE

    manifest = _rewrite_inputs(chain, _copy_prep(chain, work), rescale)
    return [judge_inputs(manifest, chain.dataset_root), _chain_error_rate(chain, manifest, work)]


def plant_transposed_axes(chain: CleanChain, work: Path) -> list[Judgement]:
    """Each tile written as its (x, y, z) transpose - ITK's index order instead of numpy's (z, y, x)."""
    manifest = _rewrite_inputs(chain, _copy_prep(chain, work), lambda x: x.transpose(2, 1, 0))
    return [judge_inputs(manifest, chain.dataset_root), _chain_error_rate(chain, manifest, work)]


def plant_last_uid_dropped(chain: CleanChain, work: Path) -> list[Judgement]:
    """The split's UID file without its final newline, read the port's way: its last scan is never prepared."""
    from vnet_accept.data.consistency import port_style_uid_lines
    from vnet_accept.data.uids import UidList

    uid_file = work / "test_uids.txt"
    uid_file.write_text(chain.uid_file.read_text().rstrip("\n"))
    port_uids = UidList(tuple(port_style_uid_lines(uid_file.read_text())), f"{uid_file} (read as the port does)")
    manifest = prepare_tiles(chain.dataset_root, port_uids, work / "prep_bin")
    return [judge_uid_coverage(uid_file, manifest)]


def plant_port_style_bn(chain: CleanChain, work: Path) -> list[Judgement]:
    from vnet_accept.export.port_style import export_port_style

    model = chain.load_checkpoint().build_model("batch")
    path = export_port_style(model, work / "vnet_port_style.onnx", spatial=None)
    return [judge_batch_invariance(path, invariance_samples())]


def plant_perturbed_weight(chain: CleanChain, work: Path) -> list[Judgement]:
    import torch

    from vnet_accept.data.tiles import TILE_SHAPE
    from vnet_accept.export.onnx_export import ExportOptions, export_onnx

    ckpt = chain.load_checkpoint()
    model = ckpt.build_model(chain.bn_mode)
    with torch.no_grad():
        weight = dict(model.named_parameters())[PERTURBED_TENSOR]
        noise = torch.randn(weight.shape, generator=torch.Generator().manual_seed(0))
        weight.add_(PERTURBATION * weight.pow(2).mean().sqrt() * noise)
    path = export_onnx(model, work / "vnet_perturbed.onnx", ExportOptions(bn_mode=chain.bn_mode, spatial=TILE_SHAPE),
                       checkpoint_sha256=ckpt.sha256)
    return [judge_parity(path, ckpt.build_model(chain.bn_mode), _first_tile(chain), chain.bn_mode)]


def plant_nan_output(chain: CleanChain, work: Path) -> list[Judgement]:
    result = _copy_results(chain, work)
    folder = result / RESULT_DIRNAME
    entry = chain.manifest.entries[-1]
    path = _output_path(folder, entry.stem)
    data = np.fromfile(path, dtype="<f4")
    data[1000:1100] = np.nan
    _replace(path, data.tobytes())
    return list(judge_results(folder, chain.manifest, chain.dataset_root, chain.uid_file))


def plant_truncated_output(chain: CleanChain, work: Path) -> list[Judgement]:
    result = _copy_results(chain, work)
    folder = result / RESULT_DIRNAME
    path = _output_path(folder, chain.manifest.entries[2].stem)
    data = path.read_bytes()
    _replace(path, data[:len(data) // 2])
    return list(judge_results(folder, chain.manifest, chain.dataset_root, chain.uid_file))


def plant_per_chip_as_card(chain: CleanChain, work: Path) -> list[Judgement]:
    """An Ascend 310 (4 chips per card) judged with ``--chips-per-card 1``: the per-chip fps taken for the card."""
    return [judge_throughput(chain.perf_dir, "Ascend310", 1)]


def plant_card_multiplied_again(chain: CleanChain, work: Path) -> list[Judgement]:
    """An Ascend 310P3 (one chip per card) judged with ``--chips-per-card 4``: the figure multiplied by 4 again."""
    return [judge_throughput(chain.perf_dir, "Ascend310P3", 4)]


def plant_mixed_prefix(chain: CleanChain, work: Path) -> list[Judgement]:
    import io

    import torch

    obj = torch.load(io.BytesIO(chain.checkpoint.read_bytes()), map_location="cpu", weights_only=True)
    keys = list(obj["state_dict"])
    half = set(keys[: len(keys) // 2])
    obj["state_dict"] = type(obj["state_dict"])((k.removeprefix("module.") if k in half else k, v)
                                                for k, v in obj["state_dict"].items())
    path = work / "vnet_half_stripped.pth.tar"
    torch.save(obj, path)
    return [judge_checkpoint(path)]


CATALOGUE: tuple[Defect, ...] = (
    Defect("1", "swapped_outputs", "two tiles' outputs swapped on disk",
           {"results.match_reference": ("outputs swapped between tiles", f"holds the output of tile {SWAPPED_TILES[1]}",
                                        f"holds the output of tile {SWAPPED_TILES[0]}"),
            "accuracy.tiles_in_place": ("outputs swapped between tiles", f"holds the output of tile {SWAPPED_TILES[1]}",
                                        f"holds the output of tile {SWAPPED_TILES[0]}")}, plant_swapped_outputs),
    Defect("2a", "output_index_1_for_0", "_1 files where ais_bench's _0 are expected",
           {"accuracy.results_valid": ("output_index", "_1.bin", "where ais_bench writes")}, plant_index_1_for_0),
    Defect("2b", "output_index_0_for_1", "_0 files where the legacy tool's _1 are expected",
           {"accuracy.results_valid": ("output_index", "_0.bin", "where the legacy benchmark tool writes")},
           plant_index_0_for_1),
    Defect("3", "wrong_scaling", "inputs scaled with another mean/std",
           {"data.inputs_match_manifest": ("wrong input scaling", f"(clip(HU) + {WRONG_SHIFT:g}) / {WRONG_SCALE:g}"),
            "accuracy.error_rate": ("FAIL error rate",)}, plant_wrong_scaling),
    Defect("4", "transposed_axes", "tile volumes written with their axes transposed",
           {"data.inputs_match_manifest": ("axes transposed", "(x, y, z) order"),
            "accuracy.error_rate": ("FAIL error rate",)}, plant_transposed_axes),
    Defect("5", "last_uid_dropped", "the last UID of the split dropped (133 of 134)",
           {"data.uid_coverage": ("1 of 2 UIDs", "lacks its final newline")}, plant_last_uid_dropped),
    Defect("6", "port_style_bn", "port-style training-form BN export",
           {"export.batch_invariant": ("batch-dependent BN", "training-form BatchNormalization")}, plant_port_style_bn),
    Defect("7a", "nan_output", "NaN in one output file",
           {"accuracy.results_valid": ("nonfinite", "NaN/Inf values", "tile ")}, plant_nan_output),
    Defect("7b", "truncated_output", "one output file truncated",
           {"accuracy.results_valid": ("truncated", "1,638,400 of 3,276,800 bytes", "tile ")}, plant_truncated_output),
    Defect("8", "perturbed_weight", "one weight tensor perturbed before export",
           {"parity.onnxrt_vs_torch": ("FAILED", "max|Δ|")}, plant_perturbed_weight),
    Defect("9a", "per_chip_as_card", "per-chip fps reported as per-card (chips per card 1 on an Ascend 310)",
           {"perf.throughput": ("chips per card 1", "contradicts SoC Ascend310", "under-stated")},
           plant_per_chip_as_card),
    Defect("9b", "card_multiplied_again", "a figure multiplied by 4 on a one-chip card (Ascend 310P3)",
           {"perf.throughput": ("chips per card 4", "contradicts SoC Ascend310P3", "over-stated")},
           plant_card_multiplied_again),
    Defect("10", "mixed_prefix", "'module.' stripped from only some checkpoint keys",
           {"checkpoint.loads_strictly": ("mixes key styles", "'module.'")}, plant_mixed_prefix),
)
DEFECTS = {d.id: d for d in CATALOGUE}


def run_defect(defect: Defect, chain: CleanChain, work: Path) -> DefectOutcome:
    work.mkdir(parents=True, exist_ok=True)
    return assess(defect, defect.plant(chain, work))


def judge_clean(chain: CleanChain, work: Path) -> list[Judgement]:
    """Every criterion of the catalogue on the clean artifacts (each must pass: a failure is a false alarm)."""
    work.mkdir(parents=True, exist_ok=True)
    legacy = work / "legacy" / "result" / "dumpOutput_device0"
    legacy.mkdir(parents=True)
    for path in sorted(chain.results_folder.glob("*_0.bin")):
        shutil.copyfile(path, legacy / (path.name[:-len("_0.bin")] + "_1.bin"))
    legacy_valid, *_ = judge_results(legacy.parent, chain.manifest, chain.dataset_root, chain.uid_file)
    return [
        judge_checkpoint(chain.checkpoint),
        judge_inputs(chain.manifest, chain.dataset_root),
        judge_uid_coverage(chain.uid_file, chain.manifest),
        judge_batch_invariance(chain.onnx_dynamic, invariance_samples()),
        judge_parity(chain.onnx, chain.load_checkpoint().build_model(chain.bn_mode), _first_tile(chain),
                     chain.bn_mode),
        *judge_results(chain.results_folder, chain.manifest, chain.dataset_root, chain.uid_file),
        Judgement(legacy_valid.criterion + "[legacy layout]", legacy_valid.passed, legacy_valid.message,
                  legacy_valid.measured),
        judge_per_tile(chain.results_folder, chain.manifest, chain.reference, REFERENCE_NAME),
        judge_throughput(chain.perf_dir, "Ascend310", None),
    ]


@dataclass
class MutationScore:
    outcomes: list[DefectOutcome]
    clean: list[Judgement]

    @property
    def caught(self) -> int:
        return sum(o.caught for o in self.outcomes)

    @property
    def planted(self) -> int:
        return len(self.outcomes)

    @property
    def false_alarms(self) -> list[Judgement]:
        return [j for j in self.clean if not j.passed]

    @property
    def passed(self) -> bool:
        return self.caught == self.planted and not self.false_alarms and self.planted > 0

    def headline(self) -> str:
        missed = [o.defect.id for o in self.outcomes if not o.caught]
        alarms = [j.criterion for j in self.false_alarms]
        return (f"{'PASS' if self.passed else 'FAIL'} mutation score {self.caught}/{self.planted} planted defects "
                f"caught, {len(alarms)} false alarms on the clean chain"
                + (f"; missed: {', '.join(missed)}" if missed else "")
                + (f"; false alarms: {', '.join(alarms)}" if alarms else ""))

    def table(self) -> list[str]:
        rows = []
        for o in self.outcomes:
            by_id = {j.criterion: j for j in o.judgements}
            for c in o.defect.criteria:
                j = by_id.get(c)
                rows.append(f"{o.defect.number:>3} {o.defect.id:<22} -> {c:<27} "
                            f"{'caught' if o.caught else 'MISSED'}: {j.first_line[:140] if j else 'not judged'}")
        return rows
