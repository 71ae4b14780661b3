#!/usr/bin/env python3
"""Run the ``perf`` benchmarks against this machine's saved baseline (what ``tox -e perf`` runs).

    python scripts/run_perf.py [PYTEST ARGS...]

Benchmarks are stored per machine in ``benchmarks/<machine>/`` (``<machine>`` = CPU model and logical CPU count,
e.g. ``amd-epyc-2cpu``; pytest-benchmark adds its own ``<system>-<python>-<bits>`` level below). Each run is
compared with the machine's baseline — its oldest saved run, ``0001_*.json``, the one committed — and fails when
a benchmark's **minimum** over its rounds is more than ``--fail-over`` percent (default 25) slower (interference
from other processes only ever adds time, so the minimum is the figure least disturbed by it, while a real
regression slows every round, the fastest included). Every run is saved next to it
(``0002_*`` …, ignored by git), so a slow run never becomes the reference; to accept a new baseline, replace
``0001_*.json`` deliberately. A machine without a baseline gets one (nothing is compared on that first run).
``--no-save`` compares without saving, ``--machine NAME`` overrides the folder, ``--print-machine`` prints the
folder name and exits.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FAIL_OVER_PCT = 25


def machine_name() -> str:
    sys.path.insert(0, str(ROOT))
    from vnet_accept.runners.backend_choice import cpu_model

    slug = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-") or "unknown-cpu"
    return f"{slug}-{os.cpu_count()}cpu"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fail-over", type=float, default=DEFAULT_FAIL_OVER_PCT, metavar="PCT",
                        help=f"fail when a benchmark's minimum is this many percent slower than the baseline's "
                             f"(default: {DEFAULT_FAIL_OVER_PCT})")
    parser.add_argument("--machine", help="baseline folder name (default: derived from the CPU)")
    parser.add_argument("--no-save", action="store_true", help="compare only; keep the baseline as it is")
    parser.add_argument("--print-machine", action="store_true", help="print the machine folder name and exit")
    args, pytest_args = parser.parse_known_args(argv)
    machine = args.machine or machine_name()
    if args.print_machine:
        print(machine)
        return 0
    storage = ROOT / "benchmarks" / machine
    cmd = [sys.executable, "-m", "pytest", "-m", "perf", "-p", "no:xdist", "--benchmark-enable",
           f"--benchmark-storage=file://{storage}", "--benchmark-columns=min,mean,median,stddev,rounds",
           "--benchmark-sort=fullname"]
    saved = sorted(storage.rglob("[0-9][0-9][0-9][0-9]_*.json")) if storage.is_dir() else []
    baseline = saved[0] if saved else None  # the oldest run: the committed baseline, never silently replaced
    if baseline is not None:  # pytest-benchmark refuses --benchmark-compare-fail without something to compare with
        cmd += [f"--benchmark-compare={baseline.name[:4]}", f"--benchmark-compare-fail=min:{args.fail_over:g}%"]
    if not args.no_save:
        cmd.append("--benchmark-autosave")
    cmd += pytest_args
    where = storage.relative_to(ROOT)
    print(f"benchmarks of machine {machine!r} in {where}: " + (
        f"regression = a minimum more than {args.fail_over:g} % slower than the baseline {baseline.name}"
        if baseline else "no baseline yet, this run becomes it"), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
