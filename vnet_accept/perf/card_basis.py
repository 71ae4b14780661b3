"""Is the card figure built on the right number of chips? (SPEC §7)

``card fps = per-chip fps × chips per card`` is only right when "chips per card" is the card's. The tools
measure one chip by construction (ais_bench and the legacy tool run on one device id), so every NPU figure the
parsers return is per chip; what can go wrong is the multiplier:

* a per-chip figure reported as the card's on an Ascend 310 (``--chips-per-card 1``): the card is 4× under-stated
  and a passing port fails (or, the other way round, the port's per-card table read as per chip);
* a figure multiplied by 4 on a card that has one chip (an Ascend 310P with ``--chips-per-card 4``, or a per-card
  figure multiplied again): the card is 4× over-stated and a slow port sails past the T4.

:func:`check_card_basis` states the multiplier, where it came from, and whether the SoC (``--soc-version`` or
``npu-smi info``) confirms it; the throughput judgement (:func:`vnet_accept.judge.perf.throughput`) fails every
batch size on a contradicted multiplier, so a contradiction is the verdict's first line, not a number that looks
fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from vnet_accept.errors import UsageError
from vnet_accept.perf.measurement import PerfMeasurement
from vnet_accept.perf.rules import chips_per_card_for


@dataclass(frozen=True)
class CardBasis:
    """The chips-per-card multiplier in force and whether the SoC confirms it (``passed`` None: nothing to
    confirm it with)."""

    soc_version: str | None
    soc_source: str
    chips_per_card: int | None
    chips_source: str
    soc_chips_per_card: int | None
    passed: bool | None
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_card_basis(soc_version: str | None, chips_per_card: int | None, *, soc_source: str = "--soc-version",
                     chips_source: str = "--chips-per-card",
                     measurements: Sequence[PerfMeasurement] = ()) -> CardBasis:
    """Check ``chips_per_card`` (None: derive it) against ``soc_version`` (None: unknown).

    Any measurement that is not per chip (``scope == "card"``) is a failure too: multiplying it would count the
    card's chips twice."""
    not_chip = [m for m in measurements if m.scope == "card"]
    if not_chip:
        return CardBasis(soc_version, soc_source, chips_per_card, chips_source, None, False,
                         f"FAIL card basis: {not_chip[0].where} is already a per-card figure; multiplying it by "
                         "chips per card counts the card's chips twice - give the tool's per-chip file")
    expected = None
    if soc_version:
        try:
            expected = chips_per_card_for(soc_version)
        except UsageError as exc:
            return CardBasis(soc_version, soc_source, chips_per_card, chips_source, None, None,
                             f"NO VERDICT card basis: {exc}")
    if expected is None:
        if chips_per_card is None:
            return CardBasis(None, soc_source, None, chips_source, None, None,
                             "NO VERDICT card basis: neither the SoC nor chips per card is known; pass --soc-version "
                             "(Ascend310: 4 chips per card, Ascend310P: 1)")
        return CardBasis(None, soc_source, chips_per_card, chips_source, None, None,
                         f"NO VERDICT card basis: {chips_per_card} chips per card ({chips_source}) cannot be checked "
                         "without the SoC; pass --soc-version or run where npu-smi can say")
    if chips_per_card is None or chips_per_card == expected:
        return CardBasis(soc_version, soc_source, expected, chips_source if chips_per_card else f"{soc_source}",
                         expected, True, f"PASS card basis: {soc_version} ({soc_source}) has {expected} chip(s) per "
                         f"card; card fps = per-chip fps × {expected}")
    factor = chips_per_card / expected
    effect = (f"per-chip fps would be reported as the card's ({expected}× under-stated)" if chips_per_card < expected
              else f"the card would be {factor:g}× over-stated (a per-chip figure multiplied by {chips_per_card}, "
                   f"or a per-card figure multiplied again)")
    return CardBasis(soc_version, soc_source, chips_per_card, chips_source, expected, False,
                     f"FAIL card basis: chips per card {chips_per_card} ({chips_source}) contradicts SoC {soc_version} "
                     f"({soc_source}), whose card has {expected} chip(s) per card: {effect}")
