"""Issue 12's catalogue: every user-facing command on bad inputs and faults ends cleanly.

Each case runs ``vnet_accept.cli.main([...])`` in this process and asserts the exit status (2 for bad input,
usage or environment; 1 where a verdict failed, e.g. a data step whose scans failed), that no traceback was
printed (nor escaped ``main``), and that the output names the culprit: the file, option or header field. A
few cases run ``python -m vnet_accept`` as a subprocess to check the exit status the shell sees. The gate's
cases fail in its input checks, before any criterion could run (its suite is pointed at an empty folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.cli import main

UNWRITABLE = Path("/proc/1/vnet-accept-catalogue")  # cannot be created, not even by root


@dataclass
class World:
    """Small, real inputs (built once) and broken variants of them."""

    base: Path
    root: Path  # synthetic dataset, raw + normalised
    uids: Path
    prep: Path
    weights: Path
    onnx: Path
    results: Path
    a_file: Path
    a_dir: Path
    foreign_owned: Path

    def file(self, name: str, content: bytes | str) -> Path:
        path = self.base / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def copy_of(self, source: Path, name: str) -> Path:
        target = self.base / "copies" / name
        if not target.exists():
            shutil.copytree(source, target)
        return target

    def raw_scan_with(self, name: str, edit: Callable[[Path], None]) -> Path:
        """A raw dataset of one scan whose CT header or data file ``edit`` damages."""
        target = self.base / "raw" / name
        if target.exists():
            return target
        uid = self.uids.read_text().split()[0]
        for sub in ("lung_ct_image", "seg-lungs-LUNA16"):
            (target / sub).mkdir(parents=True)
            for f in (self.root / sub).glob(f"{uid}.*"):
                shutil.copy2(f, target / sub / f.name)
        edit(target / "lung_ct_image" / f"{uid}.mhd")
        return target


def _replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


def _set_field(key: str, value: str) -> Callable[[Path], None]:
    def edit(header: Path) -> None:
        lines = header.read_text().splitlines()
        lines = [f"{key} = {value}" if ln.split("=")[0].strip() == key else ln for ln in lines]
        if not any(ln.startswith(f"{key} =") for ln in lines):
            lines.insert(1, f"{key} = {value}")
        header.write_text("\n".join(lines) + "\n")

    return edit


def _tiny_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("actual_input_1", TensorProto.FLOAT, ["N", 1, 64, 80, 80])
    y = helper.make_tensor_value_info("output1", TensorProto.FLOAT, ["N", 1, 64, 80, 80])
    graph = helper.make_graph([helper.make_node("Identity", ["actual_input_1"], ["output1"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    entry = model.metadata_props.add()
    entry.key, entry.value = "vnet_accept.opset", "13"  # contradicts the graph's opset
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.normalize import normalize_dataset
    from vnet_accept.data.prepare import preprocess_dataset
    from vnet_accept.data.synth import synthesize_dataset
    from vnet_accept.data.uids import read_uid_file
    from vnet_accept.model.checkpoint import write_random_checkpoint
    from vnet_accept.results.layouts import write_output

    base = tmp_path_factory.mktemp("catalogue")
    dataset = synthesize_dataset(base / "luna16", scans=2, seed=0, profile="tiny")
    raw = discover(dataset.root).require_raw()
    assert normalize_dataset(raw.select(), dataset.root, jobs=1, layout=raw).ok
    layout = discover(dataset.root).require_normalized()
    manifest = preprocess_dataset(layout, read_uid_file(dataset.uid_file), base / "prep_bin")
    results = base / "results"
    for entry in manifest.entries:
        write_output(results, entry.stem, np.zeros((64, 80, 80, 2), np.float32), "ais_bench")
    weights = write_random_checkpoint(base / "w.pth.tar", width=2)
    a_file, a_dir = base / "a_file.txt", base / "a_dir"
    a_file.write_text("not a folder\n")
    a_dir.mkdir()
    foreign = base / "foreign_owned"
    if os.geteuid() == 0:
        foreign.mkdir()
        os.chown(foreign, 65534, 65534)
    else:
        foreign = Path("/")  # owned by root, not by this user
    return World(base, dataset.root, dataset.uid_file, base / "prep_bin", weights, _tiny_onnx(base / "tiny.onnx"),
                 results, a_file, a_dir, foreign)


def _nan_checkpoint(w: World) -> Path:
    import torch

    from vnet_accept.model.checkpoint import random_state_dict, save_checkpoint

    path = w.base / "files" / "nan.pth.tar"
    if not path.exists():
        state = random_state_dict(width=2, calibrate=False)
        state["out_tr.conv1.weight"][0, 0, 0, 0, 0] = float("nan")
        state["in_tr.bn1.running_var"][1] = float("inf")
        save_checkpoint(path, state)
        assert torch.load(path, weights_only=True)  # a valid torch file, only the values are wrong
    return path


def _record(w: World, name: str, made_by: dict | str) -> Path:
    folder = w.base / "infer" / name
    folder.mkdir(parents=True, exist_ok=True)
    text = made_by if isinstance(made_by, str) else json.dumps({"made_by": made_by, "outputs": {}})
    (folder / "vnet_accept_infer.json").write_text(text)
    return folder


def _foreign_outputs(w: World) -> Path:
    folder = w.base / "infer" / "foreign"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(w.results / "0_0.bin", folder / "0_0.bin")
    return folder


def _truncated_results(w: World) -> Path:
    folder = w.copy_of(w.results, "truncated-results")
    (folder / "3_0.bin").write_bytes((folder / "3_0.bin").read_bytes()[:1000])
    return folder


def _report_dir(w: World, name: str, content: str) -> Path:
    folder = w.base / "reports" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gate-report.json").write_text(content)
    return folder


def _stale_normalised(w: World) -> Path:
    """A dataset whose raw CT was rewritten (one byte) after it was normalised."""
    root = w.copy_of(w.root, "stale")
    data = sorted((root / "lung_ct_image").glob("*.raw"))[0]
    blob = bytearray(data.read_bytes())
    blob[123] ^= 1
    data.write_bytes(bytes(blob))
    return root


GOOD_REPORT = {"schema": "vnet-accept/gate-report", "schema_version": 1,
               "summary": {"overall": "pass", "counts": {}}, "criteria": []}

# (id, builder(world) -> (argv, exit status, fragments the output must contain))
CASES: list[tuple[str, Callable[[World], tuple[list[str], int, list[str]]]]] = [
    # --- checkpoint -------------------------------------------------------------------------------------------
    ("checkpoint-info-missing", lambda w: (["checkpoint", "info", str(w.base / "missing.pth")], 2, ["missing.pth"])),
    ("checkpoint-info-empty", lambda w: (["checkpoint", "info", str(w.file("empty.pth", b""))], 2,
                                         ["empty.pth", "empty"])),
    ("checkpoint-info-truncated", lambda w: (["checkpoint", "info", str(w.file("cut.pth", w.weights.read_bytes()[
        :4000]))], 2, ["cut.pth", "truncated"])),
    ("checkpoint-info-folder", lambda w: (["checkpoint", "info", str(w.a_dir)], 2, [str(w.a_dir), "is a folder"])),
    ("checkpoint-info-text", lambda w: (["checkpoint", "info", str(w.file("notes.pth", "hello\n"))], 2,
                                        ["notes.pth"])),
    ("checkpoint-info-nan", lambda w: (["checkpoint", "info", str(_nan_checkpoint(w))], 2,
                                       ["out_tr.conv1.weight", "in_tr.bn1.running_var", "NaN/Inf"])),
    ("checkpoint-random-odd-width", lambda w: (["checkpoint", "random", "-o", str(w.base / "x.pth"), "--width", "3"],
                                               2, ["--width"])),
    ("checkpoint-random-zero-width", lambda w: (["checkpoint", "random", "-o", str(w.base / "x.pth"), "--width",
                                                 "0"], 2, ["--width"])),
    ("checkpoint-random-negative-seed", lambda w: (["checkpoint", "random", "-o", str(w.base / "x.pth"), "--seed",
                                                    "-1"], 2, ["--seed"])),
    ("checkpoint-random-output-is-folder", lambda w: (["checkpoint", "random", "-o", str(w.a_dir)], 2,
                                                      [str(w.a_dir), "is a folder"])),
    ("checkpoint-random-parent-is-file", lambda w: (["checkpoint", "random", "-o", str(w.a_file / "w.pth")], 2,
                                                    [str(w.a_file), "is a file"])),
    ("checkpoint-random-unwritable", lambda w: (["checkpoint", "random", "-o", str(UNWRITABLE / "w.pth")], 2,
                                                ["/proc/1"])),
    ("checkpoint-train-output-is-folder", lambda w: (["checkpoint", "train", "-o", str(w.a_dir)], 2,
                                                     [str(w.a_dir)])),
    ("checkpoint-train-zero-steps", lambda w: (["checkpoint", "train", "-o", str(w.base / "t.pth"), "--steps", "0"],
                                               2, ["--steps"])),
    ("checkpoint-train-running-steps", lambda w: (["checkpoint", "train", "-o", str(w.base / "t.pth"), "--steps",
                                                   "5", "--running-steps", "9"], 2, ["--running-steps"])),
    # --- export / inspect -------------------------------------------------------------------------------------
    ("export-missing-weights", lambda w: (["export", "--weights", str(w.base / "nope.pth"), "-o",
                                           str(w.base / "x.onnx")], 2, ["nope.pth"])),
    ("export-nan-weights", lambda w: (["export", "--weights", str(_nan_checkpoint(w)), "-o", str(w.base / "x.onnx")],
                                      2, ["out_tr.conv1.weight"])),
    ("export-opset-too-high", lambda w: (["export", "--weights", str(w.weights), "--opset", "99", "-o",
                                          str(w.base / "x.onnx")], 2, ["--opset 99"])),
    ("export-opset-zero", lambda w: (["export", "--weights", str(w.weights), "--opset", "0", "-o",
                                      str(w.base / "x.onnx")], 2, ["--opset"])),
    ("export-output-is-folder", lambda w: (["export", "--weights", str(w.weights), "-o", str(w.a_dir)], 2,
                                           [str(w.a_dir)])),
    ("export-bad-bn-mode", lambda w: (["export", "--weights", str(w.weights), "--bn-mode", "sometimes", "-o",
                                       str(w.base / "x.onnx")], 2, ["--bn-mode"])),
    ("inspect-empty", lambda w: (["inspect", str(w.file("empty.onnx", b""))], 2, ["empty.onnx", "empty"])),
    ("inspect-truncated", lambda w: (["inspect", str(w.file("cut.onnx", w.onnx.read_bytes()[:-20]))], 2,
                                     ["cut.onnx"])),
    ("inspect-text", lambda w: (["inspect", str(w.file("text.onnx", "hello world\n"))], 2, ["text.onnx"])),
    ("inspect-folder", lambda w: (["inspect", str(w.a_dir)], 2, [str(w.a_dir), "folder"])),
    ("inspect-missing", lambda w: (["inspect", str(w.base / "none.onnx")], 2, ["none.onnx", "does not exist"])),
    # a tiny graph, not the port's contract: export.contract fails (exit 1, a verdict) and the contradiction is named
    ("inspect-metadata-contradiction", lambda w: (["inspect", str(w.onnx)], 1,
                                                  ["WARNING", "metadata says opset 13", "opset 11",
                                                   "FAIL  export.contract"])),
    # --- synth / normalize / preprocess -----------------------------------------------------------------------
    ("synth-output-is-file", lambda w: (["synth", "-o", str(w.a_file)], 2, [str(w.a_file), "is a file"])),
    ("synth-zero-scans", lambda w: (["synth", "-o", str(w.base / "s"), "--scans", "0"], 2, ["--scans"])),
    ("synth-bad-profile", lambda w: (["synth", "-o", str(w.base / "s"), "--profile", "huge"], 2, ["--profile"])),
    ("synth-unwritable", lambda w: (["synth", "-o", str(UNWRITABLE / "s")], 2, ["/proc/1"])),
    ("normalize-missing-root", lambda w: (["normalize", "--luna16", str(w.base / "nowhere")], 2, ["nowhere"])),
    ("normalize-root-is-file", lambda w: (["normalize", "--luna16", str(w.a_file)], 2, [str(w.a_file)])),
    ("normalize-empty-uid-file", lambda w: (["normalize", "--luna16", str(w.root), "--uids",
                                             str(w.file("empty_uids.txt", ""))], 2, ["empty_uids.txt", "no UIDs"])),
    ("normalize-uid-file-not-uids", lambda w: (["normalize", "--luna16", str(w.root), "--uids",
                                                str(w.file("words.txt", "hello\n"))], 2, ["words.txt", "line 1"])),
    ("normalize-unknown-uid", lambda w: (["normalize", "--luna16", str(w.root), "--uids",
                                          str(w.file("unknown.txt", "1.2.3.4\n"))], 2, ["1.2.3.4"])),
    ("normalize-uid-file-binary", lambda w: (["normalize", "--luna16", str(w.root), "--uids",
                                              str(w.file("bin.txt", b"\xff\xfe\x00"))], 2, ["bin.txt"])),
    ("normalize-out-is-file", lambda w: (["normalize", "--luna16", str(w.root), "--out", str(w.a_file)], 2,
                                         ["--out", str(w.a_file)])),
    ("normalize-zero-jobs", lambda w: (["normalize", "--luna16", str(w.root), "--jobs", "0"], 2, ["--jobs"])),
    ("normalize-non-numeric-spacing", lambda w: (["normalize", "--luna16", str(w.raw_scan_with(
        "spacing-text", _set_field("ElementSpacing", "1 one 1"))), "--jobs", "1"], 1, ["ElementSpacing", "one"])),
    ("normalize-absurd-spacing", lambda w: (["normalize", "--luna16", str(w.raw_scan_with(
        "spacing-huge", _set_field("ElementSpacing", "1e6 1e6 1e6"))), "--jobs", "1"], 1, ["ElementSpacing"])),
    ("normalize-non-numeric-header-size", lambda w: (["normalize", "--luna16", str(w.raw_scan_with(
        "headersize", _set_field("HeaderSize", "lots"))), "--jobs", "1"], 1, ["HeaderSize"])),
    ("normalize-bad-compressed-flag", lambda w: (["normalize", "--luna16", str(w.raw_scan_with(
        "compressed", _set_field("CompressedData", "maybe"))), "--jobs", "1"], 1, ["CompressedData"])),
    ("normalize-data-file-outside", lambda w: (["normalize", "--luna16", str(w.raw_scan_with(
        "escape", _set_field("ElementDataFile", "../../secret.raw"))), "--jobs", "1"], 1, ["ElementDataFile"])),
    ("normalize-empty-header", lambda w: (["normalize", "--luna16", str(w.raw_scan_with(
        "empty-header", lambda h: h.write_text(""))), "--jobs", "1"], 1, [".mhd", "empty"])),
    ("normalize-empty-zraw", lambda w: (["normalize", "--luna16", str(w.raw_scan_with(
        "empty-zraw", lambda h: [z.write_bytes(b"") for z in (h.parent.parent / "seg-lungs-LUNA16").glob("*.zraw")]
    )), "--jobs", "1"], 1, [".zraw", "empty"])),
    ("preprocess-raw-only", lambda w: (["preprocess", "--luna16", str(w.raw_scan_with("raw-only", lambda h: None)),
                                        "--uids", str(w.uids), "-o", str(w.base / "p1")], 2,
                                       ["vnet-accept normalize"])),
    ("preprocess-path-with-spaces", lambda w: (["preprocess", "--luna16", str(w.root), "--uids", str(w.uids), "-o",
                                                str(w.base / "with space" / "prep")], 2, ["whitespace", "with space"])),
    ("preprocess-output-is-file", lambda w: (["preprocess", "--luna16", str(w.root), "--uids", str(w.uids), "-o",
                                              str(w.a_file)], 2, [str(w.a_file)])),
    ("preprocess-info-is-folder", lambda w: (["preprocess", "--luna16", str(w.root), "--uids", str(w.uids), "-o",
                                              str(w.base / "p2"), "--info", str(w.a_dir)], 2,
                                             ["--info", str(w.a_dir)])),
    ("preprocess-missing-uids", lambda w: (["preprocess", "--luna16", str(w.root), "--uids",
                                            str(w.base / "no_uids.txt"), "-o", str(w.base / "p3")], 2,
                                           ["no_uids.txt"])),
    ("preprocess-stale-normalised", lambda w: (["preprocess", "--luna16", str(_stale_normalised(w)), "--uids",
                                                str(w.uids), "-o", str(w.base / "p4")], 1,
                                               ["stale", "vnet-accept normalize"])),
    # --- infer / postprocess ----------------------------------------------------------------------------------
    ("infer-missing-prep", lambda w: (["infer", "--prep", str(w.base / "noprep"), "--onnx", str(w.onnx), "--backend",
                                       "ort-cpu", "-o", str(w.base / "r1")], 2, ["manifest.json"])),
    ("infer-empty-onnx", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.file("empty.onnx", b"")),
                                     "--backend", "ort-cpu", "-o", str(w.base / "r2")], 2, ["empty.onnx", "empty"])),
    ("infer-truncated-onnx", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.file(
        "cut.onnx", w.onnx.read_bytes()[:-20])), "--backend", "ort-cpu", "-o", str(w.base / "r3")], 2, ["cut.onnx"])),
    ("infer-negative-device-id", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.onnx), "--device-id",
                                             "-1", "-o", str(w.base / "r4")], 2, ["--device-id"])),
    ("infer-zero-batch", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.onnx), "--batch-size", "0",
                                     "-o", str(w.base / "r5")], 2, ["--batch-size"])),
    ("infer-bad-shard", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.onnx), "--shard", "3/2", "-o",
                                    str(w.base / "r6")], 2, ["3/2", "K/N"])),
    ("infer-unknown-backend", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.onnx), "--backend",
                                          "tpu", "-o", str(w.base / "r7")], 2, ["unknown backend 'tpu'"])),
    ("infer-output-is-file", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.onnx), "--backend",
                                         "ort-cpu", "-o", str(w.a_file)], 2, [str(w.a_file)])),
    ("infer-foreign-outputs", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.onnx), "--backend",
                                          "ort-cpu", "-o", str(_foreign_outputs(w))], 2, ["0_0.bin", "accounts for"])),
    ("infer-other-model", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.onnx), "--backend", "ort-cpu",
                                      "-o", str(_record(w, "other-model", {
                                          "model": {"kind": "file", "name": "old.onnx", "sha256": "0" * 64},
                                          "backend": "ort-cpu"}))], 2, ["other-model", "old.onnx", "model"])),
    ("infer-unreadable-record", lambda w: (["infer", "--prep", str(w.prep), "--onnx", str(w.onnx), "--backend",
                                            "ort-cpu", "-o", str(_record(w, "bad-record", "{truncated"))], 2,
                                           ["vnet_accept_infer.json", "not a readable run record"])),
    ("postprocess-missing-folder", lambda w: (["postprocess", str(w.base / "nothing"), "--prep", str(w.prep)], 2,
                                              ["nothing"])),
    ("postprocess-truncated-output", lambda w: (["postprocess", str(_truncated_results(w)), "--prep", str(w.prep)],
                                                2, ["3_0.bin", "truncated"])),
    ("postprocess-no-masks", lambda w: (["postprocess", str(w.results), "--uids", str(w.uids)], 2, ["--luna16"])),
    ("postprocess-json-is-folder", lambda w: (["postprocess", str(w.results), "--prep", str(w.prep), "--json",
                                               str(w.a_dir)], 2, [str(w.a_dir)])),
    # --- perf / report ----------------------------------------------------------------------------------------
    ("perf-missing-file", lambda w: (["perf", str(w.base / "perf_missing.txt")], 2, ["perf_missing.txt"])),
    ("perf-empty-file", lambda w: (["perf", str(w.file("perf_empty.txt", ""))], 2, ["perf_empty.txt", "empty"])),
    ("perf-truncated-summary", lambda w: (["perf", str(w.file("result_bs16_summary.json",
                                                              '{"NPU_compute_time": {"min": 1.0, "me'))], 2,
                                          ["result_bs16_summary.json", "not valid JSON"])),
    ("perf-zero-chips", lambda w: (["perf", str(w.base / "x.txt"), "--chips-per-card", "0"], 2,
                                   ["--chips-per-card"])),
    ("report-missing-folder", lambda w: (["report", str(w.base / "no-report")], 2, ["no-report"])),
    ("report-malformed-json", lambda w: (["report", str(_report_dir(w, "malformed", '{"schema": "vnet-acc'))], 2,
                                         ["gate-report.json", "not valid JSON"])),
    ("report-list-json", lambda w: (["report", str(_report_dir(w, "list", "[1, 2]"))], 2,
                                    ["gate-report.json", "a JSON object"])),
    ("report-bad-verdict", lambda w: (["report", str(_report_dir(w, "verdict", json.dumps(
        {**GOOD_REPORT, "criteria": [{"id": "parity.x", "verdict": "maybe"}]})))], 2, ["parity.x", "verdict"])),
    ("report-no-summary", lambda w: (["report", str(_report_dir(w, "summary", json.dumps(
        {k: v for k, v in GOOD_REPORT.items() if k != "summary"})))], 2, ["summary"])),
    ("report-output-is-file", lambda w: (["report", str(_report_dir(w, "good", json.dumps(GOOD_REPORT))), "-o",
                                          str(w.a_file)], 2, [str(w.a_file)])),
    # --- gate (fails in its input checks, before any criterion) -----------------------------------------------
    ("gate-missing-weights", lambda w: (["gate", "--weights", str(w.base / "gone.pth"), "-o", str(w.base / "g1")],
                                        2, ["--vnet-weights", "gone.pth"])),
    ("gate-nan-weights", lambda w: (["gate", "--weights", str(_nan_checkpoint(w)), "-o", str(w.base / "g2")], 2,
                                    ["--vnet-weights", "NaN/Inf"])),
    ("gate-missing-luna16", lambda w: (["gate", "--luna16", str(w.base / "no-luna"), "-o", str(w.base / "g3")], 2,
                                       ["--luna16-root", "no-luna"])),
    ("gate-empty-test-uids", lambda w: (["gate", "--test-uids", str(w.file("gate_uids.txt", "")), "-o",
                                         str(w.base / "g4")], 2, ["--test-uids", "gate_uids.txt"])),
    ("gate-report-dir-is-file", lambda w: (["gate", "-o", str(w.a_file)], 2, [str(w.a_file)])),
    ("gate-cache-dir-is-file", lambda w: (["gate", "--vnet-cache-dir", str(w.a_file), "-o", str(w.base / "g5")], 2,
                                          ["--vnet-cache-dir", str(w.a_file)])),
    ("gate-cache-dir-not-mine", lambda w: (["gate", "--vnet-cache-dir", str(w.foreign_owned), "-o",
                                            str(w.base / "g6")], 2, ["--vnet-cache-dir", str(w.foreign_owned)])),
    ("gate-zero-batch-size", lambda w: (["gate", "--batch-sizes", "0", "-o", str(w.base / "g7")], 2,
                                        ["--batch-sizes"])),
    # --- backend / gpu ----------------------------------------------------------------------------------------
    ("backend-unknown", lambda w: (["backend", "--backend", "quantum"], 2, ["quantum"])),
    ("backend-cache-not-mine", lambda w: (["backend", "--backend", "ort-cpu"], 2, ["VNET_ACCEPT_CACHE",
                                                                                   "belongs to"])),
    ("backend-cache-is-file", lambda w: (["backend", "--backend", "torch-cpu"], 2, ["VNET_ACCEPT_CACHE"])),
    ("gpu-sweep-odd-width", lambda w: (["gpu-sweep", "--device", "cpu", "--width", "3"], 2, ["--width"])),
    ("gpu-sweep-zero-batch", lambda w: (["gpu-sweep", "--device", "cpu", "--batch-sizes", "0"], 2,
                                        ["--batch-sizes"])),
    ("gpu-sweep-bad-spatial", lambda w: (["gpu-sweep", "--device", "cpu", "--spatial", "1,2"], 2, ["--spatial"])),
    ("gpu-sweep-missing-weights", lambda w: (["gpu-sweep", "--device", "cpu", "--weights", str(w.base / "g.pth")],
                                             2, ["--weights", "g.pth"])),
    ("gpu-sweep-out-is-file", lambda w: (["gpu-sweep", "--device", "cpu", "--out", str(w.a_file)], 2,
                                         ["--out", str(w.a_file)])),
    ("gpu-check-out-is-file", lambda w: (["gpu-check", "--out", str(w.a_file), "--smoke", "--device", "cpu"], 2,
                                         ["--out", str(w.a_file)])),
    ("gpu-check-empty-weights", lambda w: (["gpu-check", "--out", str(w.base / "gc"), "--smoke", "--device", "cpu",
                                            "--weights", str(w.file("gc.pth", b""))], 2, ["--weights", "gc.pth"])),
]


@pytest.fixture
def isolated(world, tmp_path, monkeypatch):
    """A working folder of its own, no VNET_ACCEPT_* settings from outside, the gate's suite an empty folder (its
    bad-input cases must stop before anything runs), the CLI's cache a fresh private folder."""
    from vnet_accept.gate import cmdline

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("VNET_ACCEPT_SHARED", "VNET_ACCEPT_NPU_RESULTS", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VNET_ACCEPT_CACHE", str(tmp_path / "cache"))
    empty_suite = tmp_path / "no_criteria"
    empty_suite.mkdir()
    monkeypatch.setattr(cmdline, "DEFAULT_SUITE", (str(empty_suite), "-p", "no:unraisableexception",
                                                   "-p", "no:hypothesispytest"))
    return monkeypatch


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    modules = set(sys.modules)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2 with a usage line, no traceback
        code = exc.code
    except BaseException as exc:  # noqa: BLE001 - this is exactly what must not happen
        pytest.fail(f"vnet-accept {' '.join(argv)} raised {type(exc).__name__}: {exc} (a traceback for the user)")
    finally:
        for added in set(sys.modules) - modules:
            if added.startswith("conftest"):
                del sys.modules[added]
    out, err = capsys.readouterr()
    return int(code or 0), out + err


@pytest.mark.parametrize("case", [builder for _, builder in CASES], ids=[name for name, _ in CASES])
def test_every_command_ends_cleanly_naming_the_culprit(case, world, isolated, request, capsys):
    name = request.node.callspec.id
    if name == "backend-cache-not-mine":
        isolated.setenv("VNET_ACCEPT_CACHE", str(world.foreign_owned))
    elif name == "backend-cache-is-file":
        isolated.setenv("VNET_ACCEPT_CACHE", str(world.a_file))
    argv, expected, fragments = case(world)
    before = _listing(world.base / "reports") if name.startswith("report-") else None
    code, output = run_cli(argv, capsys)
    assert "Traceback" not in output and "During handling" not in output, output
    assert code == expected, f"exit {code}, expected {expected}:\n{output}"
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} is not named in:\n{output}"
    if expected == 2:
        assert "error" in output.lower() or "usage:" in output, output
    if before is not None:  # an invalid report is refused before anything is written
        assert _listing(world.base / "reports") == before


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder.parent)): p.read_bytes() for p in sorted(folder.parent.rglob("*"))
            if p.is_file() and folder.parent in p.parents and "reports" in p.parts} if folder.exists() else {}


def test_the_catalogue_is_broad():
    commands = {name.split("-")[0] if not name.startswith("gpu-") else "-".join(name.split("-")[:2])
                for name, _ in CASES}
    assert {"checkpoint", "export", "inspect", "synth", "normalize", "preprocess", "infer", "postprocess", "perf",
            "report", "gate", "backend", "gpu-sweep", "gpu-check"} <= commands
    assert len(CASES) >= 40


@pytest.mark.parametrize(("argv", "code", "fragment"), [
    (["inspect", "{empty}"], 2, "is empty"),
    (["checkpoint", "info", "{missing}"], 2, "does not exist"),
    (["normalize", "--luna16", "{bad_root}", "--jobs", "1"], 1, "ElementSpacing"),
], ids=["inspect-empty", "checkpoint-missing", "normalize-bad-header"])
def test_the_shell_sees_the_exit_status_and_one_line(argv, code, fragment, world):
    paths = {"{empty}": str(world.file("sub_empty.onnx", b"")), "{missing}": str(world.base / "absent.pth"),
             "{bad_root}": str(world.raw_scan_with("spacing-text", _set_field("ElementSpacing", "1 one 1")))}
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNET_ACCEPT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "vnet_accept", *[paths.get(a, a) for a in argv]], env=env,
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output and fragment in output, output
