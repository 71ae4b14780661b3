"""A small normalised dataset with prepared tiles, and outputs with planted errors, built once per session."""

from __future__ import annotations

import pytest

from vnet_accept.metrics.masks import MaskSource
from vnet_accept.results.synthetic import plant_outputs, small_dataset

ERROR_FRACTION = 0.01
TIE_FRACTION = 0.001


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """3 scans, 14 tiles (10 skipped for an empty mask): see :func:`vnet_accept.results.synthetic.small_dataset`."""
    return small_dataset(tmp_path_factory.mktemp("postprocess-data"))


@pytest.fixture(scope="session")
def planted(dataset, tmp_path_factory):
    """``(folder, {(uid, tile): wrong voxels})``: ais_bench outputs with 1 % flipped voxels and 0.1 % exact ties."""
    folder = tmp_path_factory.mktemp("planted") / "result_bs1"
    expected = plant_outputs(dataset.manifest, MaskSource(dataset.root), folder, "ais_bench",
                             error_fraction=ERROR_FRACTION, tie_fraction=TIE_FRACTION, seed=11)
    return folder, expected
