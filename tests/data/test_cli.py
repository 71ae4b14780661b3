"""``vnet-accept synth / normalize / preprocess`` end to end, and the documented behaviour on bad datasets."""

from __future__ import annotations

import shutil

import pytest

from vnet_accept.cli import main
from vnet_accept.data.prepare import load_manifest, parse_info


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_synth_normalize_preprocess_end_to_end(tmp_path, capsys, monkeypatch):
    root = tmp_path / "luna16"
    code, out, _ = _run(capsys, "synth", "-o", root, "--scans", 4, "--seed", 3, "--profile", "tiny")
    assert code == 0 and "wrote 4 synthetic scans (3 chest, 1 abdomen; profile tiny, seed 3)" in out
    uids = root / "test_uids.txt"

    code, out, err = _run(capsys, "normalize", "--luna16", root, "--uids", uids, "--jobs", 2)
    assert code == 0, err
    assert f"normalising 4 scans (4 UIDs from {uids}) with 2 worker processes" in err
    assert "normalised 4 of 4 scans" in out

    monkeypatch.chdir(tmp_path)  # the info file names files relative to where the tools run, as the port's does
    code, out, err = _run(capsys, "preprocess", "--luna16", root, "--uids", uids, "-o", "prep_bin")
    assert code == 0, err
    assert "wrote 28 tiles of 4 of 4 scans (4 tiles skipped for an empty mask)" in out
    manifest = load_manifest(tmp_path / "prep_bin")
    info = parse_info((tmp_path / "vnet_prep_bin.info").read_text())
    assert [line.path for line in info] == [f"prep_bin/{e.file}" for e in manifest.entries]
    assert all((tmp_path / line.path).stat().st_size == 1_638_400 for line in info)


@pytest.fixture()
def raw_copy(tiny_raw, tmp_path):
    return shutil.copytree(tiny_raw.root, tmp_path / "luna16")


def test_a_missing_mask_fails_that_scan_only_and_exits_1(raw_copy, tiny_raw, capsys):
    uid = tiny_raw.uids[2]
    (raw_copy / "seg-lungs-LUNA16" / f"{uid}.mhd").unlink()
    code, out, err = _run(capsys, "normalize", "--luna16", raw_copy, "--jobs", 1)
    assert code == 1
    assert "normalised 3 of 4 scans" in out
    assert "FAILED: 1 of 4 scans could not be normalised:" in err
    assert f"  {uid}: CT {raw_copy / 'lung_ct_image' / uid}.mhd has no mask" in err
    assert not (raw_copy / "normalized_lung_ct" / f"{uid}.mhd").exists()


def test_a_corrupt_zraw_is_named_and_exits_1(raw_copy, tiny_raw, capsys):
    uid = tiny_raw.uids[0]
    zraw = raw_copy / "seg-lungs-LUNA16" / f"{uid}.zraw"
    data = bytearray(zraw.read_bytes())
    data[len(data) // 3] ^= 0x04
    zraw.write_bytes(bytes(data))
    code, out, err = _run(capsys, "normalize", "--luna16", raw_copy, "--jobs", 2)
    assert code == 1 and "normalised 3 of 4 scans" in out
    assert f"  {uid}: {zraw}" in err and ("corrupt" in err or "damaged" in err)


def test_a_uid_file_without_final_newline_and_with_crlf_uses_every_uid(raw_copy, tiny_raw, capsys, tmp_path):
    uid_file = tmp_path / "split.txt"
    uid_file.write_bytes(("\r\n".join(tiny_raw.uids[:3]) + "  ").encode())  # the port would read only 2
    code, out, err = _run(capsys, "normalize", "--luna16", raw_copy, "--uids", uid_file, "--jobs", 1)
    assert code == 0
    assert f"normalising 3 scans (3 UIDs from {uid_file})" in err and "normalised 3 of 3 scans" in out


@pytest.mark.parametrize(("lines", "message"), [
    (lambda u: [u[0], u[1], u[0]], "1 duplicate UID: {0} (lines 1 and 3)"),
    (lambda u: [u[0], "1.2.3.4"], "1 of 2 UIDs from {file} are not in the raw layout"),
])
def test_uid_list_errors_stop_before_any_work_with_exit_2(raw_copy, tiny_raw, capsys, tmp_path, lines, message):
    uid_file = tmp_path / "split.txt"
    uid_file.write_text("\n".join(lines(tiny_raw.uids)) + "\n")
    code, _, err = _run(capsys, "normalize", "--luna16", raw_copy, "--uids", uid_file)
    assert code == 2
    assert message.format(tiny_raw.uids[0], file=uid_file) in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("vnet-accept normalize: error: ")
    assert not (raw_copy / "normalized_lung_ct").exists()


def test_preprocess_on_a_raw_root_says_to_normalise_first(raw_copy, tmp_path, capsys):
    code, _, err = _run(capsys, "preprocess", "--luna16", raw_copy, "--uids", raw_copy / "test_uids.txt",
                        "-o", tmp_path / "out")
    assert code == 2 and "run `vnet-accept normalize --luna16" in err


def test_preprocess_with_a_failed_scan_exits_1_and_lists_it(tiny_normalized, tiny_raw, tmp_path, capsys):
    root = shutil.copytree(tiny_normalized, tmp_path / "luna16")
    uid = tiny_raw.uids[0]
    raw = root / "normalized_lung_ct" / f"{uid}.raw"
    raw.write_bytes(raw.read_bytes()[:1000])
    code, out, err = _run(capsys, "preprocess", "--luna16", root, "--uids", root / "test_uids.txt",
                          "-o", tmp_path / "prep_bin")
    assert code == 1
    assert "of 3 of 4 scans" in out and f"  {uid}: {raw}: 1,000 bytes" in err
