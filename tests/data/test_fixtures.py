"""The data fixtures other tests build on: the dataset under test (synthetic by default), normalised and tiled."""

from __future__ import annotations

from pathlib import Path

from vnet_accept.data.discovery import discover
from vnet_accept.data.prepare import load_normalized_mask, parse_info
from vnet_accept.data.tiles import Tile


def test_prepared_tiles_cover_the_test_split_completely(prepared_tiles, test_uids, normalized_dataset):
    manifest = prepared_tiles
    assert manifest.complete and manifest.uids == test_uids.uids
    assert manifest.data["uids_requested"] == manifest.data["scans_used"] == len(test_uids)
    assert manifest.verify() == []
    normalized = discover(normalized_dataset).require_normalized()
    assert set(test_uids.uids) <= set(normalized.uids)
    info = parse_info((manifest.directory.parent / "vnet_prep_bin.info").read_text())
    assert [(line.index, line.path) for line in info] == [(e.index, f"prep_bin/{e.file}") for e in manifest.entries]
    for uid in test_uids.uids[:2]:
        mask = load_normalized_mask(normalized_dataset, uid)
        kept = [t for t in range(8) if Tile(t).crop(mask).any()]
        assert [t for (u, t) in manifest.by_key if u == uid] == kept


def test_the_embedded_default_is_the_synthetic_dataset(gate_options, luna16_root, synthetic_luna16, prepared_tiles):
    if gate_options.luna16_root:
        assert luna16_root == Path(gate_options.luna16_root).expanduser()
        return
    assert luna16_root == synthetic_luna16.root
    assert len(synthetic_luna16.specs) == gate_options.synthetic_scans
    chest = [s.uid for s in synthetic_luna16.specs if s.kind == "chest"]
    assert all(sum(u == uid for u, _ in prepared_tiles.by_key) == 8 for uid in chest)
    if any(s.kind == "abdomen" for s in synthetic_luna16.specs):
        assert prepared_tiles.skipped, "the synthetic abdominal scan should have tiles with an empty mask"
