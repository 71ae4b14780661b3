"""Helpers for the data-pipeline tests: small synthetic datasets built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: The tiny profile's scans: 48 x 48 pixels, normalising one takes ~0.1 s; scan 3 is abdominal (4 empty tiles).
TINY_SCANS = 4
TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory):
    """A read-only tiny synthetic dataset in the raw layout (copy it before changing it)."""
    from vnet_accept.data.synth import synthesize_dataset

    return synthesize_dataset(tmp_path_factory.mktemp("tiny-raw"), scans=TINY_SCANS, seed=TINY_SEED, profile="tiny")


@pytest.fixture(scope="session")
def tiny_normalized(tiny_raw, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``tiny_raw`` with its normalised layout written next to the raw one."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.normalize import normalize_dataset

    root = shutil.copytree(tiny_raw.root, tmp_path_factory.mktemp("tiny-normalized") / "luna16")
    layout = discover(root).require_raw()
    results = normalize_dataset(layout.select(), root, jobs=1, layout=layout)
    assert results.ok, results.failures
    return root
