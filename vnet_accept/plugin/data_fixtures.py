"""Data fixtures: the LUNA16 dataset under test (the user's or a synthetic one), its test split, the normalised
volumes and the prepared ``.bin`` tiles, each built once per content and cached (safe under pytest-xdist).

* ``synthetic_luna16`` - the synthetic LUNA16-like dataset (:mod:`vnet_accept.data.synth`, ``--synthetic-scans``
  scans of ``--synthetic-seed``), built in the artifact cache;
* ``luna16_root`` - ``--luna16-root`` if given, else the synthetic dataset's root;
* ``test_uids`` - a :class:`~vnet_accept.data.uids.UidList`: ``--test-uids``, else the synthetic dataset's
  list, else every scan under ``--luna16-root`` (its ``describe()`` says which and how many);
* ``normalized_dataset`` - a root with ``normalized_lung_ct/`` and ``normalized_lung_mask/`` for every test
  UID: the user's root if it already has them, else the raw scans normalised into the cache;
* ``prepared_tiles`` - the :class:`~vnet_accept.data.prepare.Manifest` of the test split's ``.bin`` tiles (its
  ``directory`` holds them; the cached info file next to it names them as ``prep_bin/<i>.bin``, relative to
  that entry).

A dataset that cannot be used (a bad ``--luna16-root``, a failed scan) fails the tests that need it with the
reason; nothing is skipped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vnet_accept.cache import ArtifactCache

PREP_DIR = "prep_bin"
INFO_NAME = "vnet_prep_bin.info"


@pytest.fixture(scope="session")
def synthetic_luna16(artifact_cache: ArtifactCache, gate_options: Any):
    """The synthetic LUNA16-like dataset (:class:`~vnet_accept.data.synth.SyntheticDataset`), raw layout."""
    import SimpleITK

    from vnet_accept.data.synth import SYNTH_VERSION, load_synthetic_dataset, synthesize_dataset

    scans, seed = gate_options.synthetic_scans, gate_options.synthetic_seed
    if seed < 0:
        raise pytest.UsageError(f"--synthetic-seed must be >= 0, got {seed}")
    inputs = {"synth_version": SYNTH_VERSION, "scans": scans, "seed": seed, "profile": "small",
              "numpy": _numpy_version(), "SimpleITK": SimpleITK.__version__}
    root = artifact_cache.get_or_build("synthetic-luna16", inputs,
                                       lambda d: synthesize_dataset(d, scans=scans, seed=seed))
    return load_synthetic_dataset(root)


@pytest.fixture(scope="session")
def luna16_root(gate_options: Any, request: pytest.FixtureRequest) -> Path:
    """The dataset root under test: ``--luna16-root``, or the synthetic dataset (built only when needed)."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.errors import DataError

    if gate_options.luna16_root:
        root = Path(gate_options.luna16_root).expanduser()
        try:
            discover(root)
        except DataError as exc:
            pytest.fail(f"--luna16-root: {exc}", pytrace=False)
        return root
    return request.getfixturevalue("synthetic_luna16").root


@pytest.fixture(scope="session")
def test_uids(gate_options: Any, luna16_root: Path):
    """The test split as a :class:`~vnet_accept.data.uids.UidList` (see the module docstring)."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.synth import UID_FILE
    from vnet_accept.data.uids import UidList, read_uid_file
    from vnet_accept.errors import DataError

    try:
        if gate_options.test_uids:
            return read_uid_file(Path(gate_options.test_uids).expanduser())
        if not gate_options.luna16_root:
            return read_uid_file(luna16_root / UID_FILE)
        dataset = discover(luna16_root)
        layout = dataset.raw or dataset.normalized
        return UidList(tuple(layout.uids), f"the {layout.describe()} (every scan; no --test-uids given)")
    except DataError as exc:
        pytest.fail(f"test UIDs: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def normalized_dataset(pytestconfig: pytest.Config, luna16_root: Path, test_uids: Any,
                       artifact_cache: ArtifactCache) -> Path:
    """A dataset root whose normalised layout has every test UID (the user's own, or normalised into the cache)."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.normalize import RECORD_VERSION, normalize_dataset
    from vnet_accept.errors import DataError
    from vnet_accept.io_utils import available_cpus
    from vnet_accept.plugin.progress import progress

    try:
        dataset = discover(luna16_root)
        if dataset.normalized is not None and all(
                uid in dataset.normalized.cts and uid in dataset.normalized.masks for uid in test_uids):
            return dataset.root
        raw = dataset.require_raw()
        scans = raw.select(test_uids)
    except DataError as exc:
        pytest.fail(f"normalised dataset: {exc}", pytrace=False)
    inputs = {"record_version": RECORD_VERSION, "uids": list(test_uids.uids), "files": _fingerprint(scans),
              **_library_versions()}

    def build(directory: Path) -> None:
        jobs = min(available_cpus(), len(scans))
        from vnet_accept.plugin.options import get_option

        synthetic = not get_option(pytestconfig, "luna16_root")  # its UID file lies deep in the cache: not shown
        what = f"the synthetic dataset's {len(scans)} scans" if synthetic else test_uids.describe()
        with progress(pytestconfig, f"normalising {what}", total=len(scans), unit="scan") as bar:
            results = normalize_dataset(scans, directory, jobs=jobs, layout=raw,
                                        progress=lambda uid, ok: bar.update(detail=uid if ok else f"FAILED {uid}"))
        if results.failures:
            lines = "; ".join(f"{f.uid}: {f.reason}" for f in results.failures)
            pytest.fail(f"normalisation failed for {len(results.failures)} of {len(scans)} scans of "
                        f"{test_uids.describe()}: {lines}", pytrace=False)

    return artifact_cache.get_or_build("normalized-luna16", inputs, build)


@pytest.fixture(scope="session")
def prepared_tiles(pytestconfig: pytest.Config, normalized_dataset: Path, test_uids: Any,
                   artifact_cache: ArtifactCache):
    """The test split's ``.bin`` tiles and their :class:`~vnet_accept.data.prepare.Manifest` (complete)."""
    from vnet_accept.data.discovery import discover
    from vnet_accept.data.prepare import MANIFEST_VERSION, load_manifest, preprocess_dataset
    from vnet_accept.errors import DataError
    from vnet_accept.plugin.progress import progress

    try:
        layout = discover(normalized_dataset).require_normalized()
        scans = layout.select(test_uids)
    except DataError as exc:
        pytest.fail(f"prepared tiles: {exc}", pytrace=False)
    inputs = {"manifest_version": MANIFEST_VERSION, "uids": list(test_uids.uids), "files": _fingerprint(scans)}

    def build(directory: Path) -> None:
        with progress(pytestconfig, "cutting tiles", total=len(scans), unit="scan") as bar:
            manifest = preprocess_dataset(layout, test_uids, directory / PREP_DIR, info_path=directory / INFO_NAME,
                                          info_dir_text=PREP_DIR, progress=lambda uid, ok: bar.update(detail=uid))
        if manifest.failures:
            lines = "; ".join(f"{f.uid}: {f.reason}" for f in manifest.failures)
            pytest.fail(f"preprocessing failed for {len(manifest.failures)} of {len(test_uids)} scans: {lines}",
                        pytrace=False)

    entry = artifact_cache.get_or_build("prepared-tiles", inputs, build)
    return load_manifest(entry / PREP_DIR)


def _fingerprint(scans: list) -> list[list[Any]]:
    """Name, size and modification time of every header and data file: hashing a real dataset (tens of GB)
    would take longer than normalising it, and a changed file changes its size or mtime."""
    from vnet_accept.data.mhd import parse_header

    rows: list[list[Any]] = []
    for scan in scans:
        for path in (scan.ct, scan.mask):
            if path is None:
                rows.append([scan.uid, None])
                continue
            for file in (path, _data_file(path, parse_header)):
                stat = file.stat() if file is not None and file.exists() else None
                rows.append([str(file), stat.st_size if stat else None, stat.st_mtime_ns if stat else None])
    return rows


def _data_file(path: Path, parse_header: Any) -> Path | None:
    from vnet_accept.errors import DataError

    try:
        return parse_header(path).data_file
    except DataError:
        return None  # the scan will fail with its own message when it is processed


def _numpy_version() -> str:
    import numpy

    return numpy.__version__


def _library_versions() -> dict[str, str]:
    import scipy
    import SimpleITK

    return {"numpy": _numpy_version(), "scipy": scipy.__version__, "SimpleITK": SimpleITK.__version__}
