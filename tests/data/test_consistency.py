"""Input consistency (the .bin inputs against tiles recomputed from the volumes) and UID coverage."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vnet_accept.data.consistency import check_inputs, check_uid_coverage, port_style_uid_lines
from vnet_accept.data.prepare import load_manifest, read_input_bin
from vnet_accept.data.tiles import INPUT_SCALE, INPUT_SHIFT
from vnet_accept.data.uids import UidList, parse_uid_text, read_uid_file
from vnet_accept.io_utils import sha256_bytes
from vnet_accept.results.synthetic import small_dataset


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_dataset(tmp_path_factory.mktemp("consistency"))


@pytest.fixture
def prep(small, tmp_path):
    """A writable copy of the prepared tiles, and a function rewriting its inputs (checksums kept consistent)."""
    root = shutil.copytree(small.manifest.directory, tmp_path / "prep_bin")

    def rewrite(transform, files=None):
        data = json.loads((root / "manifest.json").read_text())
        for entry in data["entries"]:
            if files is not None and entry["file"] not in files:
                continue
            path = root / entry["file"]
            new = np.ascontiguousarray(transform(read_input_bin(path), entry), dtype="<f4").tobytes()
            path.write_bytes(new)
            entry["sha256"] = sha256_bytes(new)
        (root / "manifest.json").write_text(json.dumps(data))
        return load_manifest(root)

    return root, rewrite


def test_the_prepared_inputs_match(small):
    result = check_inputs(small.manifest, small.root)
    assert result.passed, result.message()
    assert result.tiles_checked == len(small.manifest) == 14
    assert result.max_abs_diff == 0.0
    assert result.headline().startswith("PASS all 14 inputs")


def test_a_different_mean_and_std_is_named_with_the_constants_implied(small, prep):
    _, rewrite = prep
    manifest = rewrite(lambda x, e: ((x.astype(np.float64) * INPUT_SCALE - INPUT_SHIFT) + 600.0) / 500.0)
    result = check_inputs(manifest, small.root)
    assert not result.passed
    assert result.kinds() == {"rescaled": 14}
    first = result.headline()
    assert first.startswith("FAIL 14 of 14 inputs differ") and "wrong input scaling" in first
    assert "(clip(HU) + 600) / 500 instead of (clip(HU) + 642.794) / 459.512" in first


@pytest.mark.parametrize(("perm", "order"), [((2, 1, 0), "(x, y, z)"), ((0, 2, 1), "(z, x, y)")])
def test_transposed_axes_are_named(small, prep, perm, order):
    _, rewrite = prep
    manifest = rewrite(lambda x, e: x.transpose(perm))
    result = check_inputs(manifest, small.root)
    assert result.kinds() == {"transposed": 14}
    assert "axes transposed" in result.headline() and f"{order} order" in result.headline()


def test_two_tiles_written_under_each_others_numbers_are_named(small, prep):
    root, rewrite = prep
    a, b = small.manifest.entries[0], small.manifest.entries[5]
    data = {e.file: read_input_bin(root / e.file) for e in (a, b)}
    manifest = rewrite(lambda x, e: data[b.file] if e["file"] == a.file else data[a.file], files={a.file, b.file})
    result = check_inputs(manifest, small.root)
    assert result.kinds() == {"other_tile": 2}
    lines = [f.line() for f in result.findings]
    assert f"{a.file} (scan {a.uid}, tile {a.tile}): holds the input of tile {b.tile}" in lines[0]
    assert "tiles written under each other's numbers" in result.headline()


def test_an_unexplained_difference_and_an_unreadable_file(small, prep):
    root, rewrite = prep
    first, second = small.manifest.entries[:2]
    manifest = rewrite(lambda x, e: x + np.random.default_rng(0).normal(0, 0.01, x.shape), files={first.file})
    (root / second.file).write_bytes(b"\0" * 100)
    result = check_inputs(manifest, small.root)
    assert result.kinds() == {"different": 1, "unreadable": 1}
    assert "not a rescaling, transposition or another tile's input" in result.message()
    assert "truncated or not a network input" in result.message()


def test_rounding_of_another_float_path_passes(small, prep):
    _, rewrite = prep
    manifest = rewrite(lambda x, e: np.nextafter(x, np.float32(np.inf)))  # one ulp everywhere
    assert check_inputs(manifest, small.root).passed


# --- UID coverage ------------------------------------------------------------------------------------------------

UIDS = [f"1.3.6.1.4.1.14519.5.2.1.6279.6001.{100 + i}" for i in range(134)]


def test_the_port_reader_drops_a_last_line_without_newline_and_the_check_names_it(tmp_path):
    uid_file = tmp_path / "test_uids.txt"
    uid_file.write_text("\n".join(UIDS))  # no final newline, as the port's file
    port = port_style_uid_lines(uid_file.read_text())
    assert len(port) == 133 and port == UIDS[:133]
    result = check_uid_coverage(read_uid_file(uid_file), port, "the port's preprocessing", uid_file=uid_file)
    assert not result.passed and result.last_line_dropped
    first = result.headline()
    assert first.startswith(f"FAIL 133 of 134 UIDs of {uid_file} used by the port's preprocessing")
    assert UIDS[-1] in first and "lacks its final newline" in first


def test_a_missing_uid_that_is_not_the_dropped_last_line(tmp_path):
    uid_file = tmp_path / "test_uids.txt"
    uid_file.write_text("\n".join(UIDS) + "\n")
    result = check_uid_coverage(read_uid_file(uid_file), UIDS[1:], "the results", uid_file=uid_file)
    assert result.headline().startswith("FAIL 133 of 134 UIDs") and UIDS[0] in result.headline()
    assert not result.last_line_dropped and "final newline" not in result.headline()


def test_extra_uids_fail_and_a_complete_split_passes():
    split = parse_uid_text("\n".join(UIDS[:3]), "three.txt")
    extra = check_uid_coverage(split, [*UIDS[:3], UIDS[5]], "the results")
    assert not extra.passed and "1 not in the split" in extra.headline()
    ok = check_uid_coverage(split, list(reversed(UIDS[:3])), "the results")
    assert ok.passed and ok.headline() == "PASS 3 of 3 UIDs of three.txt used (the results)"
    assert check_uid_coverage(UidList(tuple(UIDS[:2]), "x"), UIDS[:2], "y").passed
