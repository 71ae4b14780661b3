"""``vnet-accept``: a thin command line over the library.

Each module of this package owns a group of sub-commands through a ``register(subparsers)`` function that only
builds argparse parsers (heavy imports happen inside the handlers, so ``--help`` is instant).

Exit status, the same for every command (README "Exit status"): 0 success / every verdict passed; 1 a verdict
failed (a criterion, the error-rate rule, a performance rule, or some scans of a data step); 2 bad input, usage
or environment: a missing, empty, truncated or malformed input file, an out-of-range option, an output that
cannot be written (a read-only folder, a file where a folder is needed). Exit status 2 is always one line naming
the file, option or field and saying what to do, never a traceback. Missing output folders (and their parents)
are created; only one that cannot be created is an error (2).
"""

from __future__ import annotations

import argparse
import errno
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


EXIT_STATUS = """\
exit status (every command): 0 success / every verdict passed; 1 a verdict failed (a criterion, the error-rate
or performance rule, some scans of a data step); 2 bad input, usage or environment (a missing, empty, truncated
or malformed file, an out-of-range option, an output that cannot be written), always one line naming the file,
option or header field and what to do. Missing output folders (and their parents) are created; an output path
of the wrong type (a folder where a file is written, or the reverse) or one that cannot be written is exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vnet-accept", description=__doc__.splitlines()[0].strip("`: "),
                                     epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vnet-accept {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _add_exit_status(parser)
    return parser


def _add_exit_status(parser: argparse.ArgumentParser) -> None:
    """Every command's --help ends with the same exit-status policy."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                if EXIT_STATUS not in (child.epilog or ""):
                    child.epilog = f"{child.epilog}\n\n{EXIT_STATUS}" if child.epilog else EXIT_STATUS
                _add_exit_status(child)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"vnet-accept {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # last resort: the file system said no; name the path and what to do
        print(f"vnet-accept {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vnet-accept {args.command}: interrupted", file=sys.stderr)
        return 130


_ADVICE = {
    errno.ENOENT: "it does not exist; check the path",
    errno.EACCES: "permission denied; use a path you can read/write or fix its permissions",
    errno.EPERM: "operation not permitted; use a path you can read/write or fix its permissions",
    errno.EROFS: "the file system is read-only; choose an output on a writable one",
    errno.ENOSPC: "no space left on the device; free some space or choose another output",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another output",
    errno.ENOTDIR: "a folder is needed there; remove the file or choose another path",
    errno.EISDIR: "a file is needed there; give a file name",
    errno.EEXIST: "it already exists and is in the way; remove it or choose another path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: the path (both for a rename), what the system said, and what to do."""
    where = str(exc.filename) if exc.filename is not None else ""
    if exc.filename2 is not None:
        where += f" -> {exc.filename2}"
    reason = exc.strerror or type(exc).__name__
    advice = _ADVICE.get(exc.errno or 0, "check the path and its permissions")
    return f"{where}: {reason} ({advice})" if where else f"{reason}: {exc} ({advice})"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
