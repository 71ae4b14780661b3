"""A result folder against a reference run, tile by tile, matched by (UID, tile)."""

from __future__ import annotations

import numpy as np
import pytest

from vnet_accept.metrics.masks import MaskSource
from vnet_accept.results.layouts import ResultsError, output_relpath, read_output
from vnet_accept.results.per_tile import compare_per_tile
from vnet_accept.results.synthetic import plant_outputs, small_dataset
from vnet_accept.tolerances import Tolerance


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small dataset, outputs written as ais_bench would, and the reference (the same outputs, by key)."""
    directory = tmp_path_factory.mktemp("per-tile")
    ds = small_dataset(directory)
    out = directory / "result"
    with MaskSource(ds.root) as masks:
        plant_outputs(ds.manifest, masks, out, error_fraction=0.02)
    reference = {e.key: read_output(out / output_relpath(e.stem, "ais_bench")).copy() for e in ds.manifest.entries}
    return ds, out, reference


def _copy(out, tmp_path):
    import shutil

    return shutil.copytree(out, tmp_path / "result")


def test_identical_outputs_pass(run):
    ds, out, reference = run
    result = compare_per_tile(out, ds.manifest, reference, "the same outputs")
    assert result.passed and result.tiles == 14 and result.worst_max_abs == 0.0
    assert result.headline().startswith("PASS all 14 tiles")


def test_two_swapped_outputs_are_named_as_a_swap(run, tmp_path):
    ds, out, reference = run
    folder = _copy(out, tmp_path)
    a, b = ds.manifest.entries[1], ds.manifest.entries[4]
    pa, pb = (folder / output_relpath(e.stem, "ais_bench") for e in (a, b))
    da, db = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(db)
    pb.write_bytes(da)
    result = compare_per_tile(folder, ds.manifest, reference, "reference")
    assert not result.passed and len(result.mismatches) == 2 and len(result.swapped) == 2
    first = result.headline()
    assert first.startswith("FAIL 2 of 14 tiles differ from the reference run (reference) for the same (UID, tile)")
    assert "outputs swapped between tiles" in first
    assert f"(scan {a.uid}, tile {a.tile}) holds the output of tile {b.tile}" in result.message()


def test_a_changed_output_is_a_mismatch_with_the_comparison(run, tmp_path):
    ds, out, reference = run
    folder = _copy(out, tmp_path)
    e = ds.manifest.entries[0]
    path = folder / output_relpath(e.stem, "ais_bench")
    data = np.fromfile(path, dtype="<f4")
    path.write_bytes((data + 1e-3).astype("<f4").tobytes())
    result = compare_per_tile(folder, ds.manifest, reference, "reference", Tolerance(max_abs=1e-4))
    assert [m.tile for m in result.mismatches] == [e.tile] and result.mismatches[0].holds is None
    assert "violates max|Δ|" in result.message()


def test_a_folder_that_cannot_be_judged_raises_its_problems(run, tmp_path):
    ds, out, reference = run
    folder = _copy(out, tmp_path)
    (folder / output_relpath(ds.manifest.entries[0].stem, "ais_bench")).unlink()
    with pytest.raises(ResultsError, match="1 missing"):
        compare_per_tile(folder, ds.manifest, reference, "reference")
