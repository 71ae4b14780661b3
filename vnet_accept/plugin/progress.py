"""Progress of long steps on the terminal, through pytest's output capture (scans normalised, tiles inferred,
OMs built) and what a step is waiting for.

pytest captures a test's output, so a fixture that normalises 134 scans for twenty minutes looks hung. This
helper writes through the terminal reporter with capture suspended for the moment of the write (the capture
manager's ``global_and_fixture_disabled()``), the way pytest's own live logging does. Use it from fixtures and
tests; outside pytest (``config=None``) it writes to stderr::

    from vnet_accept.plugin.progress import progress

    @pytest.fixture(scope="session")
    def normalized_dataset(pytestconfig, ...):
        with progress(pytestconfig, "normalising scans", total=len(scans), unit="scan") as p:
            for scan in scans:
                normalise(scan)
                p.update(detail=scan.uid)          # "normalising scans 3/8 [0:12<0:20, 0.25 scan/s] 1.3.6…"
        with progress(pytestconfig, "building OMs", total=len(sizes)) as p:
            for bs in sizes:
                with p.waiting(f"atc --output=vnet_bs{bs} (timeout {timeout:.0f} s)"):
                    build(bs)                       # a heartbeat shows the elapsed time while atc runs
                p.update()

Rules it keeps:

* quiet under pytest-xdist workers (only the controller owns the terminal), with ``-qq``, and when the terminal
  reporter is disabled (``-p no:terminal``);
* on a terminal the line is rewritten in place at most ``min_interval`` (0.2 s) apart; in a log (CI, not a tty)
  a new line at most every 10 s, plus the first and the last, so a log is never silent for long and stays short;
* ``p.running(what)`` (and ``p.waiting(what)``) keep the line alive while one long call computes: the elapsed time
  every second on a terminal, every 10 s in a log;
* writes always start on a fresh line and leave the reporter ready to print the next test result;
* ``p.update`` is cheap when nothing is printed; thread-safe (a lock around the state and the writes).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

TTY_INTERVAL_S = 0.2
LOG_INTERVAL_S = 10.0
TTY_HEARTBEAT_S = 1.0
LOG_HEARTBEAT_S = 10.0


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Writer:
    """Where progress lines go. ``tty``: rewrite one line in place; otherwise one line per message."""

    tty = False

    def begin(self, line: str) -> None: ...

    def update(self, line: str) -> None: ...

    def end(self, line: str) -> None: ...


class _NullWriter(_Writer):
    pass


class _StreamWriter(_Writer):
    """Outside pytest: a stream (stderr by default)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._width = 0

    def _emit(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not break the step being reported
            pass

    def begin(self, line: str) -> None:
        self._emit(self._inplace(line) if self.tty else line + "\n")

    def update(self, line: str) -> None:
        self.begin(line)

    def end(self, line: str) -> None:
        self._emit(self._inplace(line) + "\n" if self.tty else line + "\n")
        self._width = 0

    def _inplace(self, line: str) -> str:
        pad = max(0, self._width - len(line))
        self._width = len(line)
        return "\r" + line + " " * pad


class _TerminalReporterWriter(_Writer):
    """Inside pytest: the terminal reporter, with capture suspended around each write."""

    def __init__(self, reporter: Any, capman: Any) -> None:
        self.reporter, self.capman = reporter, capman
        self.tty = bool(reporter.isatty())  # a CallableBool in pytest 8/9

    @contextlib.contextmanager
    def _uncaptured(self) -> Iterator[None]:
        if self.capman is None:
            yield
            return
        with self.capman.global_and_fixture_disabled():
            yield

    def begin(self, line: str) -> None:
        with self._uncaptured():
            self.reporter.ensure_newline()  # leave the "file.py ..." line of test results
            self._write(line)

    def update(self, line: str) -> None:
        with self._uncaptured():
            self._write(line)

    def _write(self, line: str) -> None:
        if self.tty:
            self.reporter.rewrite(line, erase=True)
            self.reporter.flush()
        else:
            self.reporter.write_line(line)

    def end(self, line: str) -> None:
        with self._uncaptured():
            if self.tty:
                self.reporter.rewrite(line, erase=True)
                self.reporter.write("\n", flush=True)
            else:
                self.reporter.write_line(line)
            # The next test result must start its own line with its file name again.
            self.reporter.currentfspath = None


def writer_for(config: Any | None, stream: TextIO | None = None) -> _Writer:
    """The writer for a pytest ``Config`` (or a ``FixtureRequest``/``Item``/``Session``), or a stream when
    ``config`` is None. Quiet under xdist workers, with ``-qq`` and without a terminal reporter."""
    config = getattr(config, "config", config)  # accept a request, an item or a session
    if config is None:
        return _StreamWriter(stream or sys.stderr)
    if hasattr(config, "workerinput"):
        return _NullWriter()
    get_verbosity = getattr(config, "get_verbosity", None)
    verbosity = get_verbosity() if callable(get_verbosity) else getattr(config.option, "verbose", 0)
    if verbosity <= -2:
        return _NullWriter()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return _NullWriter()
    return _TerminalReporterWriter(reporter, config.pluginmanager.get_plugin("capturemanager"))


class Progress:
    """A running step: ``update(n, detail=)``, ``waiting(what)``, ``note(text)``; see the module docstring."""

    def __init__(self, writer: _Writer, description: str, total: int | None = None, unit: str = "",
                 min_interval: float | None = None, clock: Any = time.monotonic) -> None:
        self.writer, self.description, self.total, self.unit = writer, description, total, unit
        self.clock = clock
        self.min_interval = min_interval if min_interval is not None else (
            TTY_INTERVAL_S if writer.tty else LOG_INTERVAL_S)
        self.count = 0
        self.detail = ""
        self.waiting_for: str | None = None
        self._waiting_verb = "waiting for"
        self._waiting_since = 0.0
        self.started = clock()
        self._last_print = self.started
        self._lock = threading.RLock()
        self._closed = False
        self.writer.begin(self.line())

    # -- what is shown -------------------------------------------------------------------------------------
    def line(self, final: bool = False) -> str:
        now = self.clock()
        elapsed = now - self.started
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            done = f"{self.count}/{self.total}{unit}"
        else:
            done = f"{self.count}{unit}" if self.count else ""  # a step without counts shows its time only
        timing = format_duration(elapsed)
        if self.count and elapsed > 0:
            rate = self.count / elapsed
            rate_text = f"{rate:.2f}{unit or ' it'}/s" if rate >= 0.01 else f"{elapsed / self.count:.0f} s each"
            if self.total and not final and self.count < self.total:
                timing += f"<{format_duration((self.total - self.count) / rate)}"
            timing += f", {rate_text}"
        text = f"{self.description}: {done} [{timing}]".replace(":  [", ": [")
        if final:
            return f"{text} done"
        if self.waiting_for:
            text += f" {self._waiting_verb} {self.waiting_for} ({format_duration(now - self._waiting_since)})"
        elif self.detail:
            text += f" {self.detail}"
        return text

    def _show(self, force: bool = False) -> None:
        now = self.clock()
        if self._closed or not (force or now - self._last_print >= self.min_interval):
            return
        self._last_print = now
        self.writer.update(self.line())

    # -- public API ----------------------------------------------------------------------------------------
    def update(self, n: int = 1, detail: str | None = None) -> None:
        """``n`` more items done; ``detail`` (e.g. the UID just finished) is shown after the counts."""
        with self._lock:
            self.count += n
            if detail is not None:
                self.detail = detail
            self._show(force=bool(self.total) and self.count >= self.total and not self.writer.tty)

    def note(self, text: str) -> None:
        """Show ``text`` after the counts now (e.g. "reading masks"), whatever the interval."""
        with self._lock:
            self.detail = text
            self._show(force=True)

    @contextlib.contextmanager
    def waiting(self, what: str, heartbeat: float | None = None, verb: str = "waiting for") -> Iterator[None]:
        """Say what the step is waiting for (a tool, a lock, a download) and show the elapsed time while it
        waits: a heartbeat every second on a terminal, every 10 s in a log."""
        interval = heartbeat if heartbeat is not None else (TTY_HEARTBEAT_S if self.writer.tty else LOG_HEARTBEAT_S)
        with self._lock:
            self.waiting_for, self._waiting_since, self._waiting_verb = what, self.clock(), verb
            self._show(force=True)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                with self._lock:
                    self._show(force=True)

        thread = threading.Thread(target=beat, name=f"progress: {what}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            with self._lock:
                self.waiting_for = None

    def running(self, what: str, heartbeat: float | None = None) -> contextlib.AbstractContextManager[None]:
        """:meth:`waiting`, said as "running <what>": a long computation (a batch of tiles) keeps the line alive."""
        return self.waiting(what, heartbeat, verb="running")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.writer.end(self.line(final=True))


@contextlib.contextmanager
def progress(config: Any | None, description: str, total: int | None = None, unit: str = "",
             min_interval: float | None = None, stream: TextIO | None = None) -> Iterator[Progress]:
    """Show the progress of a long step; see the module docstring. ``config``: a pytest ``Config`` (or a
    request/item/session), or None outside pytest (then ``stream``, default stderr)."""
    p = Progress(writer_for(config, stream), description, total, unit, min_interval)
    try:
        yield p
    finally:
        p.close()
