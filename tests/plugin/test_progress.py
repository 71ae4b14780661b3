"""vnet_accept.plugin.progress: progress through pytest's capture, quiet where it must be."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

from vnet_accept.plugin.progress import Progress, _NullWriter, _StreamWriter, format_duration, progress, writer_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_are_throttled(monkeypatch):
    clock, stream = Clock(), io.StringIO()
    p = Progress(_StreamWriter(stream), "normalising scans", total=4, unit="scan", clock=clock)
    for i in range(3):
        clock.now += 1
        p.update(detail=f"uid{i}")
    clock.now += 40
    p.update(detail="uid3")
    p.close()
    lines = stream.getvalue().splitlines()
    assert lines == ["normalising scans: 0/4 scan [0:00]",
                     "normalising scans: 4/4 scan [0:43, 0.09 scan/s] uid3",
                     "normalising scans: 4/4 scan [0:43, 0.09 scan/s] done"]


def test_terminal_line_rewritten_in_place():
    clock, stream = Clock(), Tty()
    with progress(None, "inferring tiles", total=2, unit="tile", stream=stream) as p:
        p.clock = clock
        p.min_interval = 0
        p.update()
    text = stream.getvalue()
    assert text.count("\r") >= 2 and text.endswith("done\n") and "inferring tiles: 1/2 tile" in text


def test_waiting_shows_what_and_how_long():
    stream = io.StringIO()
    with progress(None, "building OMs", total=1, stream=stream) as p:
        with p.waiting("atc --output=vnet_bs16", heartbeat=0.01):
            time.sleep(0.05)
        p.update()
    lines = stream.getvalue().splitlines()
    assert sum("waiting for atc --output=vnet_bs16 (0:00)" in line for line in lines) >= 2
    assert lines[-1].startswith("building OMs: 1/1 [") and lines[-1].endswith("done")


def test_quiet_under_xdist_workers_and_qq():
    worker = SimpleNamespace(workerinput={"workerid": "gw0"})
    assert isinstance(writer_for(worker), _NullWriter)
    qq = SimpleNamespace(get_verbosity=lambda: -2, option=SimpleNamespace(verbose=-2), pluginmanager=None)
    assert isinstance(writer_for(qq), _NullWriter)
    assert format_duration(3725) == "1:02:05" and format_duration(75.2) == "1:15"


def test_shows_through_pytest_capture(pytester):
    pytester.makepyfile('''
        from vnet_accept.plugin.progress import progress

        def test_long_step(pytestconfig):
            print("captured, not shown")
            with progress(pytestconfig, "normalising scans", total=3, unit="scan") as p:
                for uid in ("a", "b", "c"):
                    p.update(detail=uid)

        def test_after():
            pass
    ''')
    fast = ("-p", "no:cacheprovider", "-p", "no:vnet_accept.plugin", "-p", "no:unraisableexception",
            "-p", "no:hypothesispytest", "-p", "no:benchmark")
    result = pytester.runpytest(*fast)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*normalising scans: 0/3 scan*", "*normalising scans: 3/3 scan*done",
                                 "test_shows_through_pytest_capture.py .*"])
    assert "captured, not shown" not in result.stdout.str()
    quiet = pytester.runpytest("-qq", *fast)
    assert "normalising scans" not in quiet.stdout.str()


def test_running_keeps_a_long_computation_visible_and_logs_are_never_silent_for_long():
    """A batch of 16 full tiles computes for tens of seconds: ``running`` prints the elapsed time meanwhile; in a
    log (not a tty) a line comes at least every 10 s."""
    from vnet_accept.plugin import progress as module

    assert module.LOG_INTERVAL_S <= 10 and module.LOG_HEARTBEAT_S <= 10
    stream = io.StringIO()
    with progress(None, "accuracy chain", total=16, unit="tile", stream=stream) as p:
        with p.running("torch-cpu on 16 tiles", heartbeat=0.01):
            time.sleep(0.05)
        p.update(16)
    lines = stream.getvalue().splitlines()
    assert sum("running torch-cpu on 16 tiles (0:00)" in line for line in lines) >= 2
    assert lines[-1].startswith("accuracy chain: 16/16 tile [") and lines[-1].endswith("done")
