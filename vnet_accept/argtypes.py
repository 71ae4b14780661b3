"""argparse ``type=`` parsers shared by the pytest options and the command line (light: no torch).

Each raises ``argparse.ArgumentTypeError`` with what was expected and what was given, so a bad value fails at
start-up with one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def int_range(minimum: int, maximum: int | None = None, hint: str = "") -> Callable[[str], int]:
    """An integer in ``[minimum, maximum]`` (``maximum`` None: no upper bound); ``hint`` says why the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            wanted = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"expected an integer {wanted}{hint}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)


def vnet_width(text: str) -> int:
    """A VNet base width: an even integer >= 2 (16 is the real VNet)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an even integer >= 2 (16 is the real VNet), got {text!r}") from None
    if value < 2 or value % 2:
        raise argparse.ArgumentTypeError(f"expected an even integer >= 2 (16 is the real VNet), got {text!r}")
    return value


def int_list(text: str, minimum: int = 0) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``: distinct integers >= ``minimum`` (device ids start at 0)."""
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,4,8, got {text!r}") from None
    if not values or any(v < minimum for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct integers >= {minimum} such as 1,4,8, got {text!r}")
    return values


def batch_size_list(text: str) -> tuple[int, ...]:
    """``"1,4,8"`` -> ``(1, 4, 8)``: distinct batch sizes, each >= 1."""
    return int_list(text, minimum=1)


def choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {', '.join(choices)})")
        return text

    parse.__name__ = "choice"
    return parse
