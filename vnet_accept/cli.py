"""``vnet-accept``: a thin command line over the library.

Each feature module owns its sub-commands through a ``register(subparsers)`` function that only builds
argparse parsers (heavy imports happen inside the handlers). Exit codes: 0 success / pass, 1 a criterion or
a processing step failed, 2 a usage or environment error (one line saying what is wrong and what to do).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vnet_accept import __version__
from vnet_accept.errors import UsageError

#: Modules that contribute sub-commands, in the order of the data flow.
COMMAND_MODULES = (
    "vnet_accept.model.cli",       # checkpoint
    "vnet_accept.export.cli",      # export, inspect
    "vnet_accept.data.cli",        # synth, normalize, preprocess
    "vnet_accept.perf.cli",        # perf
    "vnet_accept.results.cli",     # infer, postprocess
    "vnet_accept.report.cli",      # gate, report
    "vnet_accept.gpu.cli",         # gpu-sweep, gpu-check, backend
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vnet-accept", description=__doc__.splitlines()[0].strip("`: "))
    parser.add_argument("--version", action="version", version=f"vnet-accept {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"vnet-accept {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vnet-accept {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
