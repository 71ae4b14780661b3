"""``vnet-accept``: a thin command line over the library.

Each module of this package owns a group of sub-commands through a ``register(subparsers)`` function that only
builds argparse parsers (heavy imports happen inside the handlers, so ``--help`` is instant). Exit codes: 0 success
/ pass, 1 a criterion or a processing step failed, 2 a usage or environment error (one line saying what is wrong
and what to do).
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
    "vnet_accept.cli.checkpoint",  # checkpoint
    "vnet_accept.cli.export",      # export, inspect
    "vnet_accept.cli.data",        # synth, normalize, preprocess
    "vnet_accept.cli.perf",        # perf
    "vnet_accept.cli.results",     # infer, postprocess
    "vnet_accept.cli.gate",        # gate, report
    "vnet_accept.cli.gpu",         # gpu-sweep, gpu-check, backend
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
