"""Post-processing result folders: exact counts of planted errors, layouts, the port's line, every bad folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.cli import main
from vnet_accept.data.uids import read_uid_file
from vnet_accept.errors import DataError
from vnet_accept.metrics.accuracy import parse_port_line
from vnet_accept.metrics.masks import MaskSource
from vnet_accept.reference import AccuracyReference
from vnet_accept.results.layouts import ResultsError, read_output, write_output
from vnet_accept.results.port_style import port_style_index, port_style_postprocess
from vnet_accept.results.postprocess import postprocess_results, save_volume_npz


def _clone(source: Path, destination: Path) -> Path:
    """Hard-link every file of ``source`` into ``destination`` (mutate a file only after unlinking it)."""
    destination.mkdir(parents=True)
    for path in source.iterdir():
        os.link(path, destination / path.name)
    return destination


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def test_planted_errors_are_counted_exactly(dataset, planted):
    folder, expected = planted
    report = postprocess_results(folder, manifest=dataset.manifest, uids=read_uid_file(dataset.uid_file))
    r = report.result
    assert r.counts_by_tile() == expected
    assert r.incorrect == sum(expected.values()) == sum(v.incorrect for v in r.per_volume)
    assert (r.tiles, r.volumes, r.total) == (14, 3, 14 * 409_600)
    assert report.tiles_skipped == 10 and report.uids_listed == report.uids_used == 3
    assert report.mask_reads == dict.fromkeys(dataset.uids, 1)  # each mask volume decoded once
    assert report.folder.layout == "ais_bench"
    # Without the manifest, the port's numbering rebuilt from the masks finds the same tiles.
    by_number = postprocess_results(folder, luna16_root=dataset.root, uids=read_uid_file(dataset.uid_file))
    assert by_number.result.counts_by_tile() == expected and "port's numbering" in by_number.index_source
    # The port's own loop (arg-max of the reshaped output, mask re-read per tile) counts the same errors.
    infos = port_style_index(dataset.root / "normalized_lung_mask", list(dataset.uids))
    assert port_style_postprocess(folder, dataset.root / "normalized_lung_mask", infos, 0) == (r.incorrect, r.total)


def test_three_layouts_give_identical_counts(dataset, planted, tmp_path):
    folder, expected = planted
    for layout in ("benchmark", "npy"):
        for entry in dataset.manifest.entries:
            write_output(tmp_path / layout, entry.stem, read_output(folder / f"{entry.stem}_0.bin"), layout)
        report = postprocess_results(tmp_path / layout, manifest=dataset.manifest)
        assert report.folder.layout == layout
        assert report.result.counts_by_tile() == expected


def test_cli_prints_the_ports_line_and_the_three_views(dataset, planted, tmp_path, capsys):
    folder, expected = planted
    out = tmp_path / "pp.json"
    args = ["postprocess", str(folder), "--luna16", str(dataset.root), "--uids", str(dataset.uid_file), "--prep",
            str(dataset.manifest.directory)]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    line = parse_port_line(printed)
    data = json.loads(out.read_text())
    assert (line.incorrect, line.total) == (sum(expected.values()), 14 * 409_600) == (data["incorrect"],
                                                                                       data["total"])
    assert line.pct == round(data["error_rate_pct"], 4)
    assert "layout ais_bench (<stem>_0.bin, 0-based output index, as ais_bench writes)" in printed
    assert "PASS: |" in printed and "relative change" in printed and "point accuracy" in printed
    assert len(data["per_tile"]) == 14 and len(data["per_volume"]) == 3
    assert set(data["views"]) >= {"abs_diff_pp", "relative_change_pct", "point_accuracy_pct"}
    assert data["ci95_pct"] is None and "no 95 % CI — 3 volumes: too few for an interval" in printed
    # The same outputs fail a tighter rule: exit status 1, verdict stated.
    assert main([*args, "--tolerance-pp", "0.01"]) == 1
    assert "FAIL: |" in capsys.readouterr().out


def _bad_missing(folder: Path) -> None:
    (folder / "3_0.bin").unlink()


def _bad_truncated(folder: Path) -> None:
    _rewrite(folder / "5_0.bin", (folder / "5_0.bin").read_bytes()[:1000])


def _bad_nan(folder: Path) -> None:
    out = read_output(folder / "7_0.bin").copy()
    out[10, 20, 30, 1] = np.nan
    (folder / "7_0.bin").unlink()
    write_output(folder, "7", out, "ais_bench")


def _bad_index(folder: Path) -> None:
    for path in list(folder.glob("*_0.bin")):
        path.rename(path.with_name(path.name.replace("_0.bin", "_1.bin")))
    (folder.parent / f"{folder.name}_summary.json").write_text("{}")  # an ais_bench run folder


def _bad_unknown(folder: Path) -> None:
    write_output(folder, "99", read_output(folder / "0_0.bin"), "ais_bench")


BAD_FOLDERS = {
    "missing": (_bad_missing, "1 missing", "3.bin (scan 1.3.6.1.4.1.99998.0.1, tile 3): no 3_0.bin"),
    "truncated": (_bad_truncated, "1 truncated", "5_0.bin (scan 1.3.6.1.4.1.99998.0.1, tile 5): 1,000 of 3,276,800"),
    "nan": (_bad_nan, "1 nonfinite", "7_0.bin (scan 1.3.6.1.4.1.99998.0.1, tile 7): 1 NaN/Inf values"),
    "ones_for_zeros": (_bad_index, "14 output_index", "0_1.bin (scan 1.3.6.1.4.1.99998.0.1, tile 0): output index 1 "
                       "where ais_bench writes 0_0.bin"),
    "unknown": (_bad_unknown, "1 unknown_tile", "99_0.bin: input 99.bin is not in the manifest"),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_each_bad_folder_gives_its_documented_error(case, dataset, planted, tmp_path, capsys):
    mutate, summary, named = BAD_FOLDERS[case]
    folder = _clone(planted[0], tmp_path / "result_bs1")
    mutate(folder)
    status = main(["postprocess", str(folder), "--prep", str(dataset.manifest.directory), "--luna16",
                   str(dataset.root)])
    err = capsys.readouterr().err
    assert status == 2
    first = err.splitlines()[0]
    assert first.startswith(f"vnet-accept postprocess: error: {folder}: the results cannot be judged: {summary}")
    assert named in err


def test_every_nonfinite_tile_is_named_and_nothing_is_scored(dataset, planted, tmp_path):
    folder = _clone(planted[0], tmp_path / "nan")
    for stem in ("2", "11"):
        out = read_output(folder / f"{stem}_0.bin").copy()
        out[0, 0, 0] = [np.inf, -np.inf]
        (folder / f"{stem}_0.bin").unlink()
        write_output(folder, stem, out, "ais_bench")
    with pytest.raises(ResultsError) as info:
        postprocess_results(folder, manifest=dataset.manifest)
    assert [(p.kind, p.what.split()[0]) for p in info.value.problems] == [("nonfinite", "2_0.bin"),
                                                                          ("nonfinite", "11_0.bin")]


def test_without_the_manifest_missing_and_unknown_outputs_are_found_too(dataset, planted, tmp_path):
    folder = _clone(planted[0], tmp_path / "port")
    (folder / "13_0.bin").unlink()
    write_output(folder, "14", read_output(folder / "0_0.bin"), "ais_bench")
    with pytest.raises(ResultsError) as info:
        postprocess_results(folder, luna16_root=dataset.root, uids=read_uid_file(dataset.uid_file))
    assert sorted((p.kind, p.what.split()[0]) for p in info.value.problems) == [("missing", "13.bin"),
                                                                                ("unknown_tile", "14_0.bin")]


def test_masks_and_uid_lists_must_be_the_ones_the_tiles_came_from(dataset, planted):
    folder, _ = planted
    changed = {uid: mask.copy() for uid, mask in dataset.masks.items()}
    changed[dataset.uids[1]][10:20, 10:20, 10:20] ^= True  # in tile 0, one of its 4 tiles
    with pytest.raises(DataError, match=r"has [\d,]+ lung voxels in tile \d; the tiles in .* were cut with"):
        postprocess_results(folder, manifest=dataset.manifest, masks=MaskSource(arrays=changed))
    changed = {uid: mask.copy() for uid, mask in dataset.masks.items()}
    changed[dataset.uids[2]][70:80, 10:20, 10:20] = True  # tile 4, which preprocessing skipped as empty
    with pytest.raises(DataError, match=r"has lung in tile 4, which .* skipped for an empty mask"):
        postprocess_results(folder, manifest=dataset.manifest, masks=MaskSource(arrays=changed))
    from vnet_accept.data.uids import UidList

    with pytest.raises(DataError, match="name different scans: 0 only in the UID list .*, 1 only in the manifest"):
        postprocess_results(folder, manifest=dataset.manifest, uids=UidList(dataset.uids[:2], "two.txt"))


def test_extras_are_listed_and_run_records_read(dataset, planted, tmp_path):
    folder = _clone(planted[0], tmp_path / "extras")
    (folder / "notes.log").write_text("x")
    (folder / "vnet_accept_infer.json").write_text(json.dumps({"backend": "ort-cpu"}))
    report = postprocess_results(folder, manifest=dataset.manifest, reference=AccuracyReference(0.355, 5.0))
    assert [p.name for p in report.folder.extras] == ["notes.log"]
    assert report.run_records == [{"backend": "ort-cpu"}]
    assert "note: 1 files are not outputs and were not judged: notes.log" in report.render()
    assert report.passed and report.views["point_accuracy_pct"] == pytest.approx(100 - report.result.error_rate_pct)


def test_the_worst_volume_is_saved_for_pictures(dataset, planted, tmp_path):
    report = postprocess_results(planted[0], manifest=dataset.manifest, keep_predictions=True)
    worst = report.result.worst_volume()
    path = save_volume_npz(tmp_path / "worst.npz", report, worst.uid, dataset.root)
    with np.load(path) as z:
        assert z["ct"].shape == z["mask"].shape == z["prediction"].shape == (128, 160, 160)
        assert (z["ct"].dtype, z["mask"].dtype, z["prediction"].dtype) == (np.int16, np.uint8, np.uint8)
        assert list(z["tiles"]) == list(worst.tiles) and str(z["uid"]) == worst.uid
        wrong = np.count_nonzero(z["prediction"].astype(bool) != z["mask"].astype(bool))
        assert wrong >= worst.incorrect  # plus the lung of tiles not evaluated (none here: empty tiles are empty)
        assert wrong == worst.incorrect
