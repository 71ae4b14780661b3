"""Issue 12: files left behind or lost - staging folders of killed runs, the default info file, tile folder modes,
paths with whitespace refused before any work."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vnet_accept.data.discovery import discover
from vnet_accept.data.normalize import normalize_dataset
from vnet_accept.data.prepare import default_info_path, parse_info, preprocess_dataset
from vnet_accept.data.uids import UidList
from vnet_accept.errors import DataError
from vnet_accept.io_utils import _HOST, remove_stale_staging, staging_dir


def _dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _leftover(folder: Path, prefix: str, pid: int, host: str = _HOST) -> Path:
    path = folder / f"{prefix}{host}-{pid}-abc123.tmp"
    path.mkdir(parents=True)
    (path / "half-written.raw").write_bytes(b"\0" * 10)
    return path


def test_only_dead_processes_staging_of_this_host_is_removed(tmp_path):
    dead = _leftover(tmp_path, ".staging-", _dead_pid())
    live = _leftover(tmp_path, ".staging-", os.getppid())  # alive: a run in progress
    other_host = _leftover(tmp_path, ".staging-", _dead_pid(), host="elsewhere")
    legacy = tmp_path / ".staging-k3j4h5.tmp"
    legacy.mkdir()
    os.utime(legacy, (0, 0))  # an hour-old folder of an older version
    young_legacy = tmp_path / ".staging-zz9zz9.tmp"
    young_legacy.mkdir()
    assert set(remove_stale_staging(tmp_path, ".staging-")) == {dead, legacy}
    assert not dead.exists() and not legacy.exists()
    assert live.exists() and other_host.exists() and young_legacy.exists()


def test_staging_folders_follow_the_umask_and_name_their_process(tmp_path):
    folder = staging_dir(tmp_path / "new", ".x.")
    assert folder.name.startswith(f".x.{_HOST}-{os.getpid()}-") and folder.name.endswith(".tmp")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask


def test_normalize_removes_what_a_killed_run_left(tiny_raw, tmp_path):
    root = Path(shutil.copytree(tiny_raw.root, tmp_path / "luna16"))
    ct_leftover = _leftover(root / "normalized_lung_ct", ".staging-", _dead_pid())
    mask_leftover = _leftover(root / "normalized_lung_mask", ".staging-", _dead_pid())
    raw = discover(root).require_raw()
    assert normalize_dataset(raw.select()[:1], root, jobs=1, layout=raw).ok
    assert not ct_leftover.exists() and not mask_leftover.exists()
    assert not [p for p in (root / "normalized_lung_ct").iterdir() if p.name.startswith(".")]


def test_preprocess_removes_a_killed_runs_staging_and_follows_the_umask(tiny_normalized, tmp_path):
    layout = discover(tiny_normalized).require_normalized()
    uids = UidList(tuple(layout.uids[:1]), "test")
    out = tmp_path / "prep_bin"
    leftover = _leftover(tmp_path, ".prep_bin.staging-", _dead_pid())
    live = _leftover(tmp_path, ".prep_bin.staging-", os.getppid())
    preprocess_dataset(layout, uids, out)
    assert not leftover.exists() and live.exists()
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's 0700: ais_bench's user reads it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".prep_bin.")] == [live.name]


def test_the_default_info_file_is_named_after_the_output_folder(tiny_normalized, tmp_path):
    layout = discover(tiny_normalized).require_normalized()
    uids = UidList(tuple(layout.uids[:2]), "test")
    first = preprocess_dataset(layout, uids, tmp_path / "prep_bin")
    second = preprocess_dataset(layout, UidList(tuple(layout.uids[2:3]), "other"), tmp_path / "prep_other")
    assert default_info_path(tmp_path / "prep_bin") == tmp_path / "vnet_prep_bin.info"  # the port's name
    assert first.data["info_file"]["path"] == str(tmp_path / "vnet_prep_bin.info")
    assert second.data["info_file"]["path"] == str(tmp_path / "vnet_prep_other.info")
    # Two outputs under one parent keep one info file each: neither overwrote the other.
    assert len(parse_info((tmp_path / "vnet_prep_bin.info").read_text())) == len(first.entries)
    assert len(parse_info((tmp_path / "vnet_prep_other.info").read_text())) == len(second.entries)
    assert default_info_path("prep_bin/") == Path("vnet_prep_bin.info")


def test_a_path_with_whitespace_is_refused_before_any_work(tiny_normalized, tmp_path):
    layout = discover(tiny_normalized).require_normalized()
    out = tmp_path / "my tiles" / "prep_bin"
    with pytest.raises(DataError, match="contains whitespace, which the info file .* cannot hold"):
        preprocess_dataset(layout, UidList(tuple(layout.uids[:1]), "test"), out)
    assert not (tmp_path / "my tiles").exists()  # nothing written, not even the parent
