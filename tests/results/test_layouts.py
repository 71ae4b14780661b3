"""Result layouts: naming and writing outputs, finding them in a folder, and every documented problem."""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.errors import DataError
from vnet_accept.results.layouts import (
    OUTPUT_BYTES,
    OUTPUT_SHAPE,
    PROBLEM_KINDS,
    ResultsError,
    find_result_folders,
    locate_results,
    output_is_complete,
    output_relpath,
    read_output,
    validate_outputs,
    write_output,
)

STEMS = ("0", "1", "2")
TILES = {stem: f"scan 1.2.3, tile {stem}" for stem in STEMS}


def _output(value: float = 0.0) -> np.ndarray:
    out = np.full(OUTPUT_SHAPE, value, dtype=np.float32)
    out[..., 1] = -1.0
    return out


def _fill(root, layout="ais_bench", stems=STEMS, device_id=0):
    for stem in stems:
        write_output(root, stem, _output(float(stem)), layout, device_id)
    return root


def _problems(root, layout=None, tiles=TILES):
    return validate_outputs(locate_results(root, layout), tiles)[1]


@pytest.mark.parametrize(("layout", "relpath"), [("ais_bench", "17_0.bin"), ("npy", "17_0.npy"),
                                                 ("benchmark", "dumpOutput_device2/17_1.bin")])
def test_output_names_and_round_trip(tmp_path, layout, relpath):
    assert str(output_relpath("17", layout, device_id=2)) == relpath
    path = write_output(tmp_path, "17", _output(3.0), layout, device_id=2)
    assert path == tmp_path / relpath and output_is_complete(path)
    assert np.array_equal(read_output(path), _output(3.0)) and read_output(path).dtype == np.float32
    if layout != "npy":
        assert path.stat().st_size == OUTPUT_BYTES == 3_276_800
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    with pytest.raises(ValueError, match=r"an output tile is \(64, 80, 80, 2\)"):
        write_output(tmp_path, "18", np.zeros((64, 80, 80)), layout)


def test_layouts_are_detected_and_stated(tmp_path):
    ais = _fill(tmp_path / "ais")
    found = locate_results(ais)
    assert found.layout == "ais_bench" and [f.stem for f in found.outputs] == list(STEMS)
    npy = _fill(tmp_path / "npy", "npy")
    assert locate_results(npy).layout == "npy"
    legacy = tmp_path / "legacy"
    _fill(legacy / "result", "benchmark", STEMS[:2], device_id=0)
    _fill(legacy / "result", "benchmark", STEMS[2:], device_id=1)  # a run sharded over two chips
    (legacy / "result" / "perf_vision_batchsize_16_device_0.txt").write_text("[e2e] throughputRate: 1\n")
    for root in (legacy, legacy / "result"):
        found = locate_results(root)
        assert found.layout == "benchmark" and len(found.outputs) == 3 and len(found.output_dirs) == 2
        assert "dumpOutput_device0/, dumpOutput_device1/" in found.how
        assert [p.name for p in found.extras] == ["perf_vision_batchsize_16_device_0.txt"]
    assert locate_results(legacy / "result" / "dumpOutput_device0").layout == "benchmark"
    # ais_bench's --output parent: the run folder one level down and its summary beside it.
    parent = tmp_path / "output"
    _fill(parent / "result_bs16")
    (parent / "result_bs16_summary.json").write_text("{}")
    found = locate_results(parent)
    assert found.layout == "ais_bench" and found.output_dirs == (parent / "result_bs16",)
    assert "summary result_bs16_summary.json" in found.how
    assert [p.name for p in found.extras] == ["result_bs16_summary.json"]  # listed, never silently ignored


def test_ambiguous_and_empty_folders_are_errors(tmp_path):
    _fill(tmp_path / "result_bs1")
    _fill(tmp_path / "result_bs16")
    with pytest.raises(DataError, match=r"outputs in 2 folders \(result_bs1, result_bs16\); pass the one"):
        locate_results(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no outputs in .*empty: expected <stem>_0.bin"):
        locate_results(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        locate_results(tmp_path / "absent")


def test_a_complete_folder_has_no_problems(tmp_path):
    for layout in ("ais_bench", "npy", "benchmark"):
        root = _fill(tmp_path / layout, layout)
        usable, problems = validate_outputs(locate_results(root), TILES)
        assert problems == [] and sorted(usable) == list(STEMS)


def test_missing_truncated_oversized_and_unknown_are_named(tmp_path):
    root = _fill(tmp_path)
    (root / "1_0.bin").unlink()
    (root / "2_0.bin").write_bytes(b"\0" * (OUTPUT_BYTES // 2))
    (root / "0_0.bin").write_bytes(b"\0" * (2 * OUTPUT_BYTES))
    write_output(root, "99", _output(), "ais_bench")
    problems = _problems(root)
    by_kind = {p.kind: p.line() for p in problems}
    assert set(by_kind) == {"missing", "truncated", "oversized", "unknown_tile"}
    assert by_kind["missing"] == "1.bin (scan 1.2.3, tile 1): no 1_0.bin"
    assert by_kind["truncated"] == ("2_0.bin (scan 1.2.3, tile 2): 1,638,400 of 3,276,800 bytes - half a tile: "
                                    "float16 outputs, or an input tile?")
    assert by_kind["oversized"].endswith("6,553,600 bytes, one tile is 3,276,800 = 2 tiles in one file")
    assert by_kind["unknown_tile"] == "99_0.bin: input 99.bin is not in the manifest"
    error = ResultsError(root, problems, "ais_bench")
    first = str(error).splitlines()[0]
    assert first == f"{root}: the results cannot be judged: 1 oversized, 1 truncated, 1 unknown_tile, 1 missing " \
                    "(ais_bench)"
    assert error.kinds() == set(by_kind) and set(by_kind) <= set(PROBLEM_KINDS)


def test_ones_where_zeros_were_expected_is_the_off_by_one_defect(tmp_path):
    legacy_names = _fill(tmp_path / "flat", "benchmark")  # dumpOutput_device0/<stem>_1.bin
    flat = legacy_names / "dumpOutput_device0"
    copied = tmp_path / "copied"
    flat.rename(copied)  # a flat folder of _1.bin files with no ais_bench summary: a copied legacy folder
    assert locate_results(copied).layout == "benchmark" and _problems(copied) == []
    copied.rename(flat)
    # Asked for ais_bench, or with an ais_bench summary beside them: _1 files are the off-by-one defect.
    for problems in (_problems(flat, "ais_bench"), _problems(legacy_names, "ais_bench")):
        assert {p.kind for p in problems} == {"output_index"} and len(problems) == 3
        assert "output index 1 where ais_bench writes 0_0.bin (the legacy benchmark tool's 1-based name" \
            in problems[0].detail
    assert locate_results(flat).layout == "benchmark"  # named dumpOutput_device0: the legacy tool's folder
    renamed = flat.rename(tmp_path / "result_bs1")  # ... but next to an ais_bench summary they are a defect
    (tmp_path / "result_bs1_summary.json").write_text("{}")
    assert locate_results(renamed).layout == "ais_bench"
    assert {p.kind for p in _problems(renamed)} == {"output_index"}
    # The reverse: 0-based names in the legacy tool's folder.
    reverse = tmp_path / "reverse" / "dumpOutput_device0"
    _fill(reverse)
    problems = _problems(reverse.parent)
    assert {p.kind for p in problems} == {"output_index"}
    assert "where the legacy benchmark tool writes 0_1.bin (ais_bench's 0-based name" in problems[0].detail
    # Mixed in one folder: the _1 files are named.
    mixed = _fill(tmp_path / "mixed")
    write_output(tmp_path / "x", "1", _output(), "benchmark")
    (tmp_path / "x" / "dumpOutput_device0" / "1_1.bin").rename(mixed / "1_1.bin")
    problems = _problems(mixed)
    assert [(p.kind, p.what) for p in problems] == [("output_index", "1_1.bin (scan 1.2.3, tile 1)")]


def test_duplicates_text_outputs_bad_npy_and_wrong_format(tmp_path):
    legacy = tmp_path / "legacy"
    _fill(legacy, "benchmark", device_id=0)
    _fill(legacy, "benchmark", STEMS[:1], device_id=1)
    problems = _problems(legacy)
    assert [(p.kind, p.what, p.detail) for p in problems] == [
        ("duplicate", "dumpOutput_device1/0_1.bin (scan 1.2.3, tile 0)", "also dumpOutput_device0/0_1.bin")]
    text = _fill(tmp_path / "text", "benchmark")
    (text / "dumpOutput_device0" / "2_1.bin").rename(text / "dumpOutput_device0" / "2_1.txt")
    assert [p.kind for p in _problems(text)] == ["text_output"]
    npy = _fill(tmp_path / "npy", "npy")
    np.save(npy / "1_0.npy", np.zeros(OUTPUT_SHAPE, dtype=np.float64))
    np.save(npy / "2_0.npy", np.zeros((64, 80, 80), dtype=np.float32))
    bad = {p.what: p.detail for p in _problems(npy)}
    assert bad["1_0.npy (scan 1.2.3, tile 1)"].startswith("float64 (64, 80, 80, 2), expected float32")
    assert bad["2_0.npy (scan 1.2.3, tile 2)"].startswith("float32 (64, 80, 80), expected float32")
    blob = (npy / "0_0.npy").read_bytes()
    (npy / "0_0.npy").write_bytes(blob[:1000])
    assert any(p.kind == "truncated" and p.what.startswith("0_0.npy") for p in _problems(npy))
    assert not output_is_complete(npy / "0_0.npy")
    mixed = _fill(tmp_path / "mixed")
    write_output(mixed, "7", _output(), "npy")
    assert [p.kind for p in _problems(mixed, tiles={**TILES, "7": "scan 1.2.3, tile 7"})] == ["wrong_format"]


def test_find_result_folders_names_the_runs(tmp_path):
    _fill(tmp_path / "ais" / "result_bs16")
    _fill(tmp_path / "ais" / "result_bs1")
    legacy = tmp_path / "legacy_run" / "result"
    _fill(legacy, "benchmark", device_id=0)
    (legacy / "perf_vision_batchsize_4_device_0.txt").write_text("x")
    _fill(tmp_path / "other")
    found = dict(find_result_folders(tmp_path))
    assert found == {"om_bs1": tmp_path / "ais" / "result_bs1", "om_bs16": tmp_path / "ais" / "result_bs16",
                     "om_bs4": tmp_path / "legacy_run", "replay": tmp_path / "other"}
    assert locate_results(found["om_bs4"]).layout == "benchmark"
