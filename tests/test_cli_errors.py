"""Issue 12: one exit-code policy; an OSError anywhere is one line naming the path, never a traceback; benchmarks
under the ``perf`` marker enable themselves."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from vnet_accept.cli import describe_os_error, main
from vnet_accept.cli.outputs import output_dir, output_file
from vnet_accept.errors import UsageError
from vnet_accept.io_utils import atomic_write_text, ensure_dir

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.mark.parametrize(("exc", "expected"), [
    (PermissionError(errno.EACCES, "Permission denied", "/data/out.json"), "/data/out.json: Permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x"), "read-only; choose an output on a writable one"),
    (OSError(errno.ENOSPC, "No space left on device", "/big"), "/big: No space left"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "a", None, "b"), "a -> b"),
])
def test_os_errors_become_one_line_naming_the_path(exc, expected):
    assert expected in describe_os_error(exc)


def test_an_os_error_in_any_handler_exits_2_with_one_line(monkeypatch, tmp_path, capsys):
    def boom(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/results/out.json")

    monkeypatch.setenv("VNET_ACCEPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("vnet_accept.runners.backend_choice.select_backend", boom)
    assert main(["backend"]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == ("vnet-accept backend: error: /srv/results/out.json: Permission denied (permission "
                           "denied; use a path you can read/write or fix its permissions)")


def test_output_paths_are_checked_before_any_work(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=r"-o .*file/x: .*file is a file"):
        output_file(tmp_path / "file" / "x", "-o")
    with pytest.raises(UsageError, match="is a folder; give a file name"):
        output_file(tmp_path, "-o")
    with pytest.raises(UsageError, match="--out .*is a file, a folder is expected"):
        output_dir(tmp_path / "file", "--out")
    assert output_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"  # created later
    assert not (tmp_path / "new").exists()


def test_writers_name_the_path_in_the_way(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError) as caught:
        atomic_write_text(tmp_path / "file" / "sub" / "x.txt", "x")
    assert caught.value.filename == str(tmp_path / "file")
    with pytest.raises(IsADirectoryError) as caught:
        atomic_write_text(tmp_path, "x")
    assert caught.value.filename == str(tmp_path)
    assert ensure_dir(tmp_path / "a" / "b").is_dir()


def test_benchmarks_enable_themselves_under_the_perf_marker(pytester):
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    perf: benchmarks\naddopts = --benchmark-disable\n")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.perf
        def test_timed(benchmark):
            benchmark.pedantic(sum, args=([1, 2, 3],), rounds=3, iterations=1)
            assert benchmark.stats.stats.min >= 0

        def test_unmarked_stays_disabled(benchmark):
            benchmark(sum, [1])
            assert benchmark.disabled
    """)
    result = pytester.runpytest_inprocess("-m", "perf or not perf", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "NoneType" not in result.stdout.str()


def test_every_commands_help_states_the_same_exit_status_policy():
    import argparse

    from vnet_accept.cli import EXIT_STATUS, build_parser

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in dict.fromkeys(action.choices.values()):
                    yield from parsers(child)

    every = list(parsers(build_parser()))
    assert len(every) >= 17  # vnet-accept, 14 commands, checkpoint's 3 actions
    assert all(EXIT_STATUS in (p.epilog or "") for p in every)
    assert "Missing output folders (and their parents) are created" in EXIT_STATUS
