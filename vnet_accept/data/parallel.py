"""Run one job per scan across processes, and account for every scan: a result or a failure with its reason.

The reference port lost a scan when a normalisation worker died. Here:

* a job that raises becomes that scan's :class:`ScanFailure` (the exception is turned into text inside the
  worker, so even an unpicklable exception arrives);
* a worker process that dies (killed for memory, a crash in native code) breaks the pool, which fails every
  unfinished job at once; those scans are then re-run one by one, each in a fresh single-worker pool, so the
  scan that kills its worker is the only one reported as failed and the others still complete;
* Ctrl-C cancels the pending jobs and propagates ``KeyboardInterrupt`` (the jobs' own staged writes clean up).

With ``jobs == 1`` the jobs run in this process (no pickling, easy to debug; only a native crash is not caught).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from vnet_accept.errors import UsageError

T = TypeVar("T")

WORKER_DIED = ("the worker process died while processing this scan (killed by the system, e.g. out of memory, "
               "or a crash in native code); rerun it with --jobs 1 or with more memory")


@dataclass(frozen=True)
class ScanFailure:
    """Why one scan produced no output: ``reason`` is one line that names the file and what to do."""

    uid: str
    reason: str


@dataclass
class ScanResults(Generic[T]):
    """Per-scan results in the order the scans were given, and every failure (also in that order)."""

    results: dict[str, T] = field(default_factory=dict)
    failures: list[ScanFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def describe_exception(exc: BaseException) -> str:
    """A failure reason: a :class:`UsageError` (DataError…) is already written for the user; anything else is
    unexpected and gets its type and innermost frame so it can be reported."""
    if isinstance(exc, UsageError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory while processing this scan; use fewer --jobs or a machine with more memory"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"unexpected {type(exc).__name__}: {exc}{where}"


def _guarded(job: Callable[[Any], T], item: Any) -> tuple[bool, Any]:
    # Runs in the worker: turn any exception into text so nothing about it needs to be picklable.
    try:
        return True, job(item)
    except Exception as exc:  # noqa: BLE001 - every failure is reported per scan, never raised past here
        return False, describe_exception(exc)


def run_per_scan(items: Sequence[Any], job: Callable[[Any], T], uid_of: Callable[[Any], str], jobs: int,
                 progress: Callable[[str, bool], None] | None = None) -> ScanResults[T]:
    """Run ``job(item)`` for every item; ``job`` must be a picklable (module-level) callable when ``jobs > 1``.

    ``progress(uid, ok)`` is called once per finished scan (e.g. to advance a progress bar).
    """
    outcome: dict[str, tuple[bool, Any]] = {}

    def finish(item: Any, result: tuple[bool, Any]) -> None:
        outcome[uid_of(item)] = result
        if progress is not None:
            progress(uid_of(item), result[0])

    if jobs <= 1:
        for item in items:
            finish(item, _guarded(job, item))
    else:
        broken = _run_pool(items, job, jobs, finish)
        for item in broken:  # isolate the scan that kills its worker
            finish(item, _run_alone(item, job))
    collected: ScanResults[T] = ScanResults()
    for item in items:
        ok, value = outcome[uid_of(item)]
        if ok:
            collected.results[uid_of(item)] = value
        else:
            collected.failures.append(ScanFailure(uid_of(item), value))
    return collected


def _run_pool(items: Sequence[Any], job: Callable[[Any], T], jobs: int,
              finish: Callable[[Any, tuple[bool, Any]], None]) -> list[Any]:
    broken: list[Any] = []
    pool = ProcessPoolExecutor(max_workers=min(jobs, max(len(items), 1)))
    try:
        pending: dict[Future, Any] = {pool.submit(_guarded, job, item): item for item in items}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                try:
                    finish(item, future.result())
                except BrokenProcessPool:
                    broken.append(item)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return broken


def _run_alone(item: Any, job: Callable[[Any], T]) -> tuple[bool, Any]:
    with ProcessPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(_guarded, job, item).result()
        except BrokenProcessPool:
            return False, WORKER_DIED
