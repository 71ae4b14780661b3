"""The catalogue of planted defects: each is planted into a copy of a clean artifact and judged by the gate's own
criterion function (:mod:`vnet_accept.judge`) - the very function the gate's criterion calls - so the mutation
score is a statement about the gate, not about a sibling path (SPEC §9; issue 8).

A defect is *caught* when every criterion it names fails **and** its message names the cause (each expected
fragment appears in the message, the first one in its first line - what pytest's short summary shows), **and**
that criterion was produced by the judge function the defect declares (``judged_by``, which a test holds
against the gate's checks). The clean chain must pass every criterion (no false alarm). :class:`MutationScore`
states caught / planted.

Which criterion catches what, and why that one (the self-test's ONNX Runtime results folder plays the OM's; its
batch size is 4, so the OM criteria carry ``bs4``):

== ========================================= ================================================================
#  defect                                    criterion (and the evidence it uses)
== ========================================= ================================================================
1  two tiles' outputs swapped on disk        om.tiles_in_place: each swapped output fits the other tile's mask
                                             far better than its own (no reference run); om.parity: each output
                                             against the reference output of the *same* tile, swaps named
2  output index off by one (both ways)       accuracy.error_rate (of the results folder): the layout (ais_bench
                                             summary beside the folder / dumpOutput_device<id>) fixes the index,
                                             every file is named
3  wrong input scaling                       data.inputs_match_manifest (recomputed tiles; the constants implied
                                             are stated) and accuracy.error_rate (the trained model fails)
4  tile volume written with axes transposed  data.inputs_match_manifest (the axis order is stated) and
                                             accuracy.error_rate
5  last UID of the split dropped             data.uid_coverage: the split read robustly vs the scans used; the
                                             missing last line without a final newline is named
6  port-style training-form BN export        export.batch_invariant: graph inspection and bs1-vs-batch outputs
7  NaN in one output / one output truncated  accuracy.error_rate (of the results folder): the file and its
                                             (UID, tile) are named
8  one weight tensor perturbed before export parity.onnxrt_vs_torch against the checkpoint
9  per-chip fps reported per card (and a     perf.throughput: chips per card checked against the SoC before any
   figure multiplied by 4 again)             card figure is compared with the T4
10 ``module.`` stripped from some keys       checkpoint.loads_strictly: strict loading refuses mixed key styles
== ========================================= ================================================================
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vnet_accept.judge import accuracy, checkpoint, data, export, om, parity, perf
from vnet_accept.judge.criterion import Criterion
from vnet_accept.selftest.chain import (
    INFER_BATCH,
    RESULT_DIRNAME,
    SELFTEST_BN_MODE,
    CleanChain,
    infer_results,
    prepare_tiles,
)

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
#: The self-test's results folder plays the OM's at this batch size: the OM criteria's ids carry it.
OM_BS = INFER_BATCH


def family(cid: str) -> str:
    """``om.parity.om_vs_onnx.bs4`` -> ``om.parity``; the family a defect expects (ids without batch sizes and
    sources)."""
    return ".".join(cid.split("[", 1)[0].split(".")[:2])


def first_line(c: Criterion) -> str:
    text = c.explanation()
    return text.splitlines()[0] if text else ""


def _fn_name(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


@dataclass(frozen=True)
class Defect:
    """One planted defect. ``expect`` maps each criterion family meant to catch it to the fragments its message must
    contain (the first in the first line); ``judged_by`` names, per family, the gate's judge function that must
    produce it. ``plant`` plants the defect into a copy under a work folder and returns the criteria judged."""

    number: str
    id: str
    title: str
    expect: dict[str, tuple[str, ...]]
    plant: Callable[[CleanChain, Path], list[Criterion]]

    @property
    def criteria(self) -> tuple[str, ...]:
        return tuple(self.expect)

    @property
    def judged_by(self) -> dict[str, Callable]:
        return {f: JUDGED_BY[f] for f in self.expect if f in JUDGED_BY}


@dataclass
class DefectOutcome:
    defect: Defect
    judgements: list[Criterion]
    problems: list[str] = field(default_factory=list)  # why it does not count as caught
    called: dict[str, int] = field(default_factory=dict)  # judge function -> calls while planting

    @property
    def caught(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        by_family = {family(c.id): c for c in self.judgements}
        return {"defect": f"{self.defect.number} {self.defect.title}", "id": self.defect.id,
                "criteria": list(self.defect.criteria), "caught": self.caught, "problems": self.problems,
                "judged_by": {f: _fn_name(fn) for f, fn in self.defect.judged_by.items()},
                "messages": {f: first_line(by_family[f]) if f in by_family else None for f in self.defect.criteria}}


def assess(defect: Defect, judgements: list[Criterion], called: dict[str, int] | None = None) -> DefectOutcome:
    """Caught iff each expected criterion was judged (by the gate's function, when ``called`` is given), failed,
    and its message holds the expected fragments."""
    outcome = DefectOutcome(defect, judgements, called=dict(called or {}))
    by_family = {family(c.id): c for c in judgements}
    for fam, fragments in defect.expect.items():
        c = by_family.get(fam)
        if c is None:
            outcome.problems.append(f"{fam} was not judged")
            continue
        if called is not None and not called.get(_fn_name(JUDGED_BY[fam])):
            outcome.problems.append(f"{fam} was not judged by the gate's {_fn_name(JUDGED_BY[fam])}")
        if c.verdict == "pass":
            outcome.problems.append(f"{fam} passed: {first_line(c)}")
            continue
        line = first_line(c)
        if fragments and fragments[0] not in line:
            outcome.problems.append(f"{fam}: first line does not name the cause {fragments[0]!r}: {line}")
        absent = [f for f in fragments[1:] if f not in c.explanation()]
        if absent:
            outcome.problems.append(f"{fam}: message lacks {absent}: {line}")
    return outcome


# --- the clean chain's evidence, read the way the gate reads it -------------------------------------------------------

class Evidence:
    """Post-processing of result folders against the held-out masks, memoised per folder (the gate's accuracy
    chain does the same): what ``accuracy.error_rate`` and ``om.tiles_in_place`` read."""

    def __init__(self, chain: CleanChain, manifest: Any = None) -> None:
        self.chain, self.manifest = chain, manifest or chain.manifest
        self._reports: dict[str, Any] = {}

    def report_of(self, folder: Path) -> Any:
        from vnet_accept.data.uids import read_uid_file
        from vnet_accept.reference import AccuracyReference
        from vnet_accept.results.postprocess import postprocess_results

        key = str(folder)
        if key not in self._reports:
            self._reports[key] = postprocess_results(folder, luna16_root=self.chain.dataset_root,
                                                     manifest=self.manifest, uids=read_uid_file(self.chain.uid_file),
                                                     reference=AccuracyReference(), resamples=50,
                                                     keep_predictions=True)
        return self._reports[key]

    def error_rate(self, folder: Path) -> Criterion:
        from vnet_accept.reference import AccuracyReference

        return accuracy.results_error_rate(f"accuracy.error_rate.om_bs{OM_BS}", "pooled voxel error rate of the "
                                           "results folder (the self-test's ONNX Runtime run plays the OM)", folder,
                                           self.report_of, AccuracyReference(), basis=f"{folder} ({BASIS})")

    def tiles_in_place(self, folder: Path) -> Criterion:
        return accuracy.tiles_in_place(f"om.tiles_in_place.bs{OM_BS}", "no output fits another tile's mask far better "
                                       "than its own", folder, self.report_of, basis=f"{folder} ({BASIS})")

    def om_parity(self, folder: Path) -> Criterion:
        """Every output of the folder against the reference run of the *same* tile (PyTorch, the checkpoint) under
        the OM's limits - the gate's om.parity with the self-test's reference."""
        from vnet_accept.results.layouts import read_output
        from vnet_accept.tolerances import om_tolerance

        labels = {e.stem: f"scan {e.uid}, tile {e.tile}" for e in self.manifest.entries}
        reference = {e.stem: self.chain.reference[e.key] for e in self.manifest.entries}
        outputs = {e.stem: read_output(folder / f"{e.stem}_0.bin") for e in self.manifest.entries}
        return om.parity(outputs, reference, labels, OM_BS, om_tolerance(), basis=f"{folder} vs {REFERENCE_NAME}",
                         tiles_asked=len(reference))


BASIS = f"self-test: narrow VNet, held-out synthetic scans, bn_mode={SELFTEST_BN_MODE}"
REFERENCE_NAME = f"torch-cpu, bn_mode={SELFTEST_BN_MODE}, the same checkpoint"


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

    doc = json.loads((prep / "manifest.json").read_text())
    for entry in doc["entries"]:
        path = prep / entry["file"]
        new = np.ascontiguousarray(transform(read_input_bin(path)), dtype="<f4").tobytes()
        _replace(path, new)
        entry["sha256"] = sha256_bytes(new)
    (prep / "manifest.json").write_text(json.dumps(doc, indent=2))
    return load_manifest(prep)


def _chain_error_rate(chain: CleanChain, manifest: Any, work: Path) -> Criterion:
    """The trained model run through the chain on ``manifest``'s tiles (ONNX Runtime), post-processed."""
    folder = infer_results(chain.onnx, manifest, work / "result", chain.bn_mode)
    return Evidence(chain, manifest).error_rate(folder)


def invariance_samples() -> np.ndarray:
    from vnet_accept.data.tiles import ct_like_batch

    n, spatial = INVARIANCE_SAMPLES
    return ct_like_batch(n, spatial, seed=INVARIANCE_SEED)


def _batch_invariance(path: Path) -> Criterion:
    """``export.batch_invariant`` of an ONNX file: the graph, and ONNX Runtime on the samples one at a time and as
    one batch."""
    from vnet_accept.export.inspect import inspect_onnx
    from vnet_accept.results.inference import run_in_batches
    from vnet_accept.runners.registry import create_runner
    from vnet_accept.tolerances import INVARIANCE_ATOL

    samples = invariance_samples()
    with create_runner("ort-cpu", onnx=path) as runner:
        alone = run_in_batches(runner, samples, 1)
        batched = {len(samples): run_in_batches(runner, samples, len(samples))}
    return export.batch_invariant(inspect_onnx(path), alone, batched, INVARIANCE_ATOL,
                                  basis=f"{path.name}, ONNX Runtime, {len(samples)} CT-like samples")


def _parity(chain: CleanChain, path: Path) -> Criterion:
    """``parity.onnxrt_vs_torch``: ONNX Runtime on ``path`` against PyTorch on the checkpoint, one tile."""
    from vnet_accept.reference import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME
    from vnet_accept.runners.registry import create_runner
    from vnet_accept.tolerances import parity_tolerance

    feed = {ONNX_INPUT_NAME: np.ascontiguousarray(chain.manifest.read_input(chain.manifest.entries[0])[None, None])}
    model = chain.load_checkpoint().build_model(chain.bn_mode)
    with create_runner("ort-cpu", onnx=path, bn_mode=chain.bn_mode) as ort_runner, \
            create_runner("torch-cpu", model=model, bn_mode=chain.bn_mode) as torch_runner:
        obtained, expected = ort_runner.infer(feed)[ONNX_OUTPUT_NAME], torch_runner.infer(feed)[ONNX_OUTPUT_NAME]
    return parity.parity(f"parity.onnxrt_vs_torch.{chain.bn_mode}.bs1_64x80x80", "ONNX Runtime equals PyTorch on "
                         "the checkpoint, one full tile", obtained, expected, parity_tolerance(),
                         name=f"onnxrt {path.name} vs torch checkpoint [bn_mode={chain.bn_mode}, bs1, 64×80×80]",
                         basis=BASIS)


def _throughput(chain: CleanChain, soc_version: str, chips_per_card: int | None) -> Criterion:
    """``perf.throughput.bs1`` of the port's performance files on the card described."""
    from vnet_accept.perf.parsers import parse_perf_paths
    from vnet_accept.perf.rules import reference_t4_thresholds

    scan = parse_perf_paths([chain.perf_dir], statistic="port")
    judgement = perf.throughput(scan.measurements, reference_t4_thresholds(), soc_version=soc_version,
                           chips_per_card=chips_per_card)
    return judgement.throughput_criterion(1)


def _uid_coverage(uid_file: Path, manifest: Any) -> Criterion:
    from vnet_accept.data.uids import read_uid_file

    return data.uid_coverage(read_uid_file(uid_file), manifest.uids, f"the tiles in {manifest.directory}",
                             uid_file=uid_file)


# --- the defects -------------------------------------------------------------------------------------------------

def plant_swapped_outputs(chain: CleanChain, work: Path) -> list[Criterion]:
    result = _copy_results(chain, work)
    folder = result / RESULT_DIRNAME
    first = chain.manifest.entries[0].uid
    a, b = (chain.manifest.entry(first, k) for k in SWAPPED_TILES)
    pa, pb = _output_path(folder, a.stem), _output_path(folder, b.stem)
    da, db = pa.read_bytes(), pb.read_bytes()
    _replace(pa, db)
    _replace(pb, da)
    evidence = Evidence(chain)
    return [evidence.tiles_in_place(folder), evidence.om_parity(folder)]


def plant_index_1_for_0(chain: CleanChain, work: Path) -> list[Criterion]:
    """ais_bench's folder (its summary beside it) holding ``<stem>_1.bin``: the legacy tool's names."""
    result = _copy_results(chain, work)
    folder = result / RESULT_DIRNAME
    for path in sorted(folder.glob("*_0.bin")):
        path.rename(path.with_name(path.name[:-len("_0.bin")] + "_1.bin"))
    (result / f"{RESULT_DIRNAME}_summary.json").write_text(json.dumps(
        {"NPU_compute_time": {"mean": 170.0}, "throughput": 23.5, "args": {"batchsize": 4, "outfmt": "BIN"}}))
    return [Evidence(chain).error_rate(folder)]


def plant_index_0_for_1(chain: CleanChain, work: Path) -> list[Criterion]:
    """The legacy tool's ``dumpOutput_device0/`` holding ``<stem>_0.bin``: ais_bench's names."""
    result = work / "result"
    shutil.copytree(chain.results / RESULT_DIRNAME, result / "dumpOutput_device0")
    return [Evidence(chain).error_rate(result)]


def plant_wrong_scaling(chain: CleanChain, work: Path) -> list[Criterion]:
    from vnet_accept.data.tiles import INPUT_SCALE, INPUT_SHIFT

    def rescale(x: np.ndarray) -> np.ndarray:
        hu = x.astype(np.float64) * INPUT_SCALE - INPUT_SHIFT  # the clipped HU the right input came from
        return (hu + WRONG_SHIFT) / WRONG_SCALE

    manifest = _rewrite_inputs(chain, _copy_prep(chain, work), rescale)
    return [data.inputs_match_manifest(manifest, chain.dataset_root), _chain_error_rate(chain, manifest, work)]


def plant_transposed_axes(chain: CleanChain, work: Path) -> list[Criterion]:
    """Each tile written as its (x, y, z) transpose - ITK's index order instead of numpy's (z, y, x)."""
    manifest = _rewrite_inputs(chain, _copy_prep(chain, work), lambda x: x.transpose(2, 1, 0))
    return [data.inputs_match_manifest(manifest, chain.dataset_root), _chain_error_rate(chain, manifest, work)]


def plant_last_uid_dropped(chain: CleanChain, work: Path) -> list[Criterion]:
    """The split's UID file without its final newline, read the port's way: its last scan is never prepared."""
    from vnet_accept.data.consistency import port_style_uid_lines
    from vnet_accept.data.uids import UidList

    uid_file = work / "test_uids.txt"
    uid_file.write_text(chain.uid_file.read_text().rstrip("\n"))
    port_uids = UidList(tuple(port_style_uid_lines(uid_file.read_text())), f"{uid_file} (read as the port does)")
    manifest = prepare_tiles(chain.dataset_root, port_uids, work / "prep_bin")
    return [_uid_coverage(uid_file, manifest)]


def plant_port_style_bn(chain: CleanChain, work: Path) -> list[Criterion]:
    from vnet_accept.export.port_style import export_port_style

    model = chain.load_checkpoint().build_model("batch")
    return [_batch_invariance(export_port_style(model, work / "vnet_port_style.onnx", spatial=None))]


def plant_perturbed_weight(chain: CleanChain, work: Path) -> list[Criterion]:
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
    return [_parity(chain, path)]


def plant_nan_output(chain: CleanChain, work: Path) -> list[Criterion]:
    result = _copy_results(chain, work)
    folder = result / RESULT_DIRNAME
    entry = chain.manifest.entries[-1]
    path = _output_path(folder, entry.stem)
    values = np.fromfile(path, dtype="<f4")
    values[1000:1100] = np.nan
    _replace(path, values.tobytes())
    return [Evidence(chain).error_rate(folder)]


def plant_truncated_output(chain: CleanChain, work: Path) -> list[Criterion]:
    result = _copy_results(chain, work)
    folder = result / RESULT_DIRNAME
    path = _output_path(folder, chain.manifest.entries[2].stem)
    raw = path.read_bytes()
    _replace(path, raw[:len(raw) // 2])
    return [Evidence(chain).error_rate(folder)]


def plant_per_chip_as_card(chain: CleanChain, work: Path) -> list[Criterion]:
    """An Ascend 310 (4 chips per card) judged with ``--chips-per-card 1``: the per-chip fps taken for the card."""
    return [_throughput(chain, "Ascend310", 1)]


def plant_card_multiplied_again(chain: CleanChain, work: Path) -> list[Criterion]:
    """An Ascend 310P3 (one chip per card) judged with ``--chips-per-card 4``: the figure multiplied by 4 again."""
    return [_throughput(chain, "Ascend310P3", 4)]


def plant_mixed_prefix(chain: CleanChain, work: Path) -> list[Criterion]:
    import io

    import torch

    obj = torch.load(io.BytesIO(chain.checkpoint.read_bytes()), map_location="cpu", weights_only=True)
    keys = list(obj["state_dict"])
    half = set(keys[: len(keys) // 2])
    obj["state_dict"] = type(obj["state_dict"])((k.removeprefix("module.") if k in half else k, v)
                                                for k, v in obj["state_dict"].items())
    path = work / "vnet_half_stripped.pth.tar"
    torch.save(obj, path)
    return [checkpoint.loads_strictly(path, width=chain.load_checkpoint().width)]


#: The gate's judge function behind each criterion family the catalogue uses (the gate's checks call the same;
#: tests/selftest holds one against the other).
JUDGED_BY: dict[str, Callable] = {
    "om.tiles_in_place": accuracy.tiles_in_place,
    "om.parity": om.parity,
    "accuracy.error_rate": accuracy.results_error_rate,
    "data.inputs_match_manifest": data.inputs_match_manifest,
    "data.uid_coverage": data.uid_coverage,
    "export.batch_invariant": export.batch_invariant,
    "parity.onnxrt_vs_torch": parity.parity,
    "perf.throughput": perf.throughput,
    "checkpoint.loads_strictly": checkpoint.loads_strictly,
}

_SWAP = (f"tile {SWAPPED_TILES[0]}", f"tile {SWAPPED_TILES[1]}")
CATALOGUE: tuple[Defect, ...] = (
    Defect("1", "swapped_outputs", "two tiles' outputs swapped on disk",
           {"om.tiles_in_place": ("outputs swapped between tiles", f"holds the output of {_SWAP[1]}",
                                  f"holds the output of {_SWAP[0]}"),
            "om.parity": ("outputs swapped between tiles", f"{_SWAP[0]} holds the output of", _SWAP[1])},
           plant_swapped_outputs),
    Defect("2a", "output_index_1_for_0", "_1 files where ais_bench's _0 are expected",
           {"accuracy.error_rate": ("output_index", "_1.bin", "where ais_bench writes")}, plant_index_1_for_0),
    Defect("2b", "output_index_0_for_1", "_0 files where the legacy tool's _1 are expected",
           {"accuracy.error_rate": ("output_index", "_0.bin", "where the legacy benchmark tool writes")},
           plant_index_0_for_1),
    Defect("3", "wrong_scaling", "inputs scaled with another mean/std",
           {"data.inputs_match_manifest": ("wrong input scaling", f"(clip(HU) + {WRONG_SHIFT:g}) / {WRONG_SCALE:g}"),
            "accuracy.error_rate": ("FAIL", "> 1.0 pp")}, plant_wrong_scaling),
    Defect("4", "transposed_axes", "tile volumes written with their axes transposed",
           {"data.inputs_match_manifest": ("axes transposed", "(x, y, z) order"),
            "accuracy.error_rate": ("FAIL", "> 1.0 pp")}, plant_transposed_axes),
    Defect("5", "last_uid_dropped", "the last UID of the split dropped (133 of 134)",
           {"data.uid_coverage": ("1 of 2 UIDs", "lacks its final newline")}, plant_last_uid_dropped),
    Defect("6", "port_style_bn", "port-style training-form BN export",
           {"export.batch_invariant": ("batch-dependent BN", "training-form BatchNormalization")}, plant_port_style_bn),
    Defect("7a", "nan_output", "NaN in one output file",
           {"accuracy.error_rate": ("nonfinite", "NaN/Inf values", "tile ")}, plant_nan_output),
    Defect("7b", "truncated_output", "one output file truncated",
           {"accuracy.error_rate": ("truncated", "1,638,400 of 3,276,800 bytes", "tile ")}, plant_truncated_output),
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


class _Counting:
    """Count the calls of the given judge functions while planting (patched on their module or class, restored)."""

    def __init__(self, functions: Mapping[str, Callable]) -> None:
        self.functions = list(functions.values())
        self.calls: dict[str, int] = {}
        self._undo: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> dict[str, int]:
        import importlib

        for fn in self.functions:
            owner: Any = importlib.import_module(fn.__module__)
            for part in fn.__qualname__.split(".")[:-1]:
                owner = getattr(owner, part)
            name = fn.__qualname__.rsplit(".", 1)[-1]
            original = owner.__dict__[name]
            key = _fn_name(fn)

            def counted(*args: Any, _original: Callable = original, _key: str = key, **kwargs: Any) -> Any:
                self.calls[_key] = self.calls.get(_key, 0) + 1
                return _original(*args, **kwargs)

            setattr(owner, name, counted)
            self._undo.append((owner, name, original))
        return self.calls

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


def run_defect(defect: Defect, chain: CleanChain, work: Path) -> DefectOutcome:
    work.mkdir(parents=True, exist_ok=True)
    with _Counting(defect.judged_by) as calls:
        judgements = defect.plant(chain, work)
    return assess(defect, judgements, calls)


def judge_clean(chain: CleanChain, work: Path) -> list[Criterion]:
    """Every criterion of the catalogue on the clean artifacts (each must pass: a failure is a false alarm)."""
    from dataclasses import replace

    work.mkdir(parents=True, exist_ok=True)
    legacy = work / "legacy" / "result" / "dumpOutput_device0"
    legacy.mkdir(parents=True)
    for path in sorted(chain.results_folder.glob("*_0.bin")):
        shutil.copyfile(path, legacy / (path.name[:-len("_0.bin")] + "_1.bin"))
    evidence = Evidence(chain)
    legacy_rate = evidence.error_rate(legacy.parent)
    return [
        checkpoint.loads_strictly(chain.checkpoint, width=chain.load_checkpoint().width),
        data.inputs_match_manifest(chain.manifest, chain.dataset_root),
        _uid_coverage(chain.uid_file, chain.manifest),
        _batch_invariance(chain.onnx_dynamic),
        _parity(chain, chain.onnx),
        evidence.error_rate(chain.results_folder),
        replace(legacy_rate, id=legacy_rate.id + "[legacy layout]"),
        evidence.tiles_in_place(chain.results_folder),
        evidence.om_parity(chain.results_folder),
        _throughput(chain, "Ascend310", None),
    ]


def trained_model_error_rate(chain: CleanChain) -> Criterion:
    """``selftest.trained_model.error_rate``: the trained model's pooled error rate on the held-out scans, through the
    real chain, held to the self-test's ceiling."""
    from vnet_accept.tolerances import SELFTEST_MAX_ERROR_PCT

    return accuracy.error_rate_at_most(
        "selftest.trained_model.error_rate", "pooled voxel error rate of the self-test's trained narrow VNet on "
        "held-out synthetic scans, through export -> preprocess -> ONNX Runtime -> post-process",
        Evidence(chain).report_of(chain.results_folder), SELFTEST_MAX_ERROR_PCT,
        basis=BASIS + ", ONNX Runtime CPU, fp32")


@dataclass
class MutationScore:
    outcomes: list[DefectOutcome]
    clean: list[Criterion]

    @property
    def caught(self) -> int:
        return sum(o.caught for o in self.outcomes)

    @property
    def planted(self) -> int:
        return len(self.outcomes)

    @property
    def false_alarms(self) -> list[Criterion]:
        return [c for c in self.clean if c.verdict != "pass"]

    @property
    def passed(self) -> bool:
        return self.caught == self.planted and not self.false_alarms and self.planted > 0

    def headline(self) -> str:
        missed = [o.defect.id for o in self.outcomes if not o.caught]
        alarms = [c.id for c in self.false_alarms]
        return (f"{'PASS' if self.passed else 'FAIL'} mutation score {self.caught}/{self.planted} planted defects "
                f"caught, {len(alarms)} false alarms on the clean chain"
                + (f"; missed: {', '.join(missed)}" if missed else "")
                + (f"; false alarms: {', '.join(alarms)}" if alarms else ""))

    def table(self) -> list[str]:
        rows = []
        for o in self.outcomes:
            by_family = {family(c.id): c for c in o.judgements}
            for f in o.defect.criteria:
                c = by_family.get(f)
                rows.append(f"{o.defect.number:>3} {o.defect.id:<22} -> {f:<27} "
                            f"{'caught' if o.caught else 'MISSED'}: {first_line(c)[:140] if c else 'not judged'}")
        return rows
