"""Issue 12: a normalised volume knows the raw scan it came from; stale ones (raw rewritten afterwards) are refused
by whatever reads them, naming the UID and the file and saying to re-run ``vnet-accept normalize``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vnet_accept.data.discovery import discover
from vnet_accept.data.normalize import RECORD_VERSION, normalize_dataset
from vnet_accept.data.prepare import load_normalized_ct, load_normalized_mask, preprocess_dataset
from vnet_accept.data.provenance import check_normalized_source, record_path
from vnet_accept.data.uids import UidList
from vnet_accept.errors import DataError
from vnet_accept.io_utils import sha256_file


@pytest.fixture
def dataset(tiny_normalized, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_normalized, tmp_path / "luna16"))


def _uid(root: Path) -> str:
    return discover(root).require_normalized().uids[0]


def _flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def test_the_record_holds_the_raw_files_identity(dataset):
    uid = _uid(dataset)
    record = json.loads(record_path(dataset, uid).read_text())
    assert record["record_version"] == RECORD_VERSION == 2
    ct = record["source_identity"]["ct"]
    raw = dataset / "lung_ct_image" / f"{uid}.raw"
    assert ct["size"] == raw.stat().st_size and ct["sha256"] == sha256_file(raw)
    assert {"DimSize", "ElementSpacing", "ElementType", "Offset"} <= set(ct["fields"])
    assert record["source_identity"]["mask"]["data_file"].endswith(".zraw")


def test_a_raw_scan_rewritten_after_normalisation_is_refused_by_every_reader(dataset):
    uid = _uid(dataset)
    _flip_byte(dataset / "lung_ct_image" / f"{uid}.raw")  # same size, other content
    for read in (lambda: check_normalized_source(dataset, uid), lambda: load_normalized_ct(dataset, uid),
                 lambda: load_normalized_mask(dataset, uid)):
        with pytest.raises(DataError, match=rf"scan {uid}: the normalised CT .* is stale.*sha256 differs.*re-run "
                                            "`vnet-accept normalize`"):
            read()
    layout = discover(dataset).require_normalized()
    manifest = preprocess_dataset(layout, UidList((uid,), "test"), dataset.parent / "prep")
    assert not manifest.entries and "stale" in manifest.failures[0].reason  # no tile cut from it


def test_a_changed_header_field_or_size_is_named(dataset):
    uid = _uid(dataset)
    mask_header = dataset / "seg-lungs-LUNA16" / f"{uid}.mhd"
    mask_header.write_text("\n".join("Offset = 0 0 0" if ln.startswith("Offset =") else ln
                                     for ln in mask_header.read_text().splitlines()) + "\n")
    with pytest.raises(DataError, match="normalised mask .* stale.*Offset was"):
        check_normalized_source(dataset, uid)
    uid2 = discover(dataset).require_normalized().uids[1]
    raw = dataset / "lung_ct_image" / f"{uid2}.raw"
    raw.write_bytes(raw.read_bytes() + b"\0\0")
    with pytest.raises(DataError, match=rf"scan {uid2}: .*bytes"):  # the header check names the size first
        check_normalized_source(dataset, uid2)


def test_normalising_again_makes_it_current(dataset):
    uid = _uid(dataset)
    _flip_byte(dataset / "lung_ct_image" / f"{uid}.raw")
    raw = discover(dataset).require_raw()
    assert normalize_dataset(raw.select(UidList((uid,), "test")), dataset, jobs=1, layout=raw).ok
    check_normalized_source(dataset, uid)
    assert load_normalized_ct(dataset, uid).shape == (128, 160, 160)


def test_nothing_to_compare_with_is_not_an_error(dataset, tmp_path):
    uid = _uid(dataset)
    alone = tmp_path / "normalised-only"
    for sub in ("normalized_lung_ct", "normalized_lung_mask"):
        shutil.copytree(dataset / sub, alone / sub)
    record = json.loads(record_path(alone, uid).read_text())
    for role in ("ct", "mask"):  # the recorded raw files are gone too (a copied, normalised-only dataset)
        record["source_identity"][role]["header"] = str(tmp_path / "gone" / f"{uid}.mhd")
    (alone / "normalized_lung_ct" / f"{uid}.json").write_text(json.dumps(record))
    check_normalized_source(alone, uid)
    (alone / "normalized_lung_ct" / f"{uid}.json").unlink()  # no record at all (the port's normalisation)
    check_normalized_source(alone, uid)


def test_a_record_without_identity_is_refused_while_the_raw_scan_is_there(dataset):
    uid = _uid(dataset)
    path = dataset / "normalized_lung_ct" / f"{uid}.json"
    record = json.loads(path.read_text())
    del record["source_identity"]  # as vnet-accept 1 wrote it
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match="does not say which raw scan it was made from .*re-run `vnet-accept"):
        check_normalized_source(dataset, uid)
    path.write_text("{not json")
    with pytest.raises(DataError, match=rf"scan {uid}: its normalisation record .* is unreadable"):
        check_normalized_source(dataset, uid)
