"""``modelzoo_level.txt`` derived from the verdicts, never written by hand.

The file is ``Key:Value`` lines, as in the model zoo: ``FuncStatus`` (OK/NOK), ``PrecisionStatus`` (OK/POK/NOK)
and ``PerfStatus`` (PERFECT/OK/POK/NOK). The gate's rules (:func:`modelzoo_statuses`):

``FuncStatus`` — the port works end to end on the NPU.
    NOK if any criterion outside the ``accuracy`` and ``perf`` families failed or errored (checkpoint, export,
    parity, batch invariance, OM build/inference …). Otherwise OK if at least one criterion produced a
    measurement by running the OM on an NPU (see :func:`ran_on_npu`): an ``om``/``npu`` criterion that passed,
    or an ``accuracy.error_rate.om*`` or ``perf.throughput.*`` figure (pass or fail: the OM ran; how well is
    the other two statuses' business). Otherwise NOK, *not judged*.
``PrecisionStatus`` — the OM's error rate against the published one (``accuracy.error_rate.om*``).
    OK if every judged OM source passed; NOK if none passed (an ``error`` counts as not passed); POK if some
    passed and some did not (e.g. bs1 within tolerance, bs16 not). No judged OM source: NOK, *not judged*.
``PerfStatus`` — card fps against the T4 (``perf.throughput.bs<N>``), by ``vnet_accept.perf.rules``.
    The placement tier from the ratios at bs1 and bs16 (the lower decides) and ``rules.perf_status``: PERFECT
    (Benchmark tier, every batch size beats the T4), OK (Official tier, every batch size beats the T4), POK (the
    tier is not Research but some batch size does not beat the T4; a batch size whose figure errored counts
    as not beating it), NOK (Research tier). No ratio at bs1 or bs16: NOK, *not judged*.

**A run that did not gate the port** (stand-in weights, or a required criterion not judged; see
:mod:`vnet_accept.report.readiness`) writes ``NOK`` on all three lines, whatever the criteria alone give: the
report says NOT READY TO FILE, and the file says the same.

**A skipped criterion never makes a status OK.** When nothing decided a status (everything it rests on was
skipped for want of the trained checkpoint, LUNA16 or an NPU), the file still holds the line, with ``NOK``: the
format has no "unknown" value and no comment syntax, a missing line would read as an unfinished file, and NOK
("not demonstrated") is the only value that claims nothing. The report's JSON (``modelzoo[*].judged = false``)
and Markdown say which lines are NOK for want of evidence and what was missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

MODELZOO_FILE = "modelzoo_level.txt"
KEYS = ("FuncStatus", "PrecisionStatus", "PerfStatus")
VALUES = {"FuncStatus": ("OK", "NOK"), "PrecisionStatus": ("OK", "POK", "NOK"),
          "PerfStatus": ("PERFECT", "OK", "POK", "NOK")}
#: Families that do not decide FuncStatus (they decide the other two statuses).
NON_FUNCTIONAL_FAMILIES = ("accuracy", "perf")
#: A dotted id segment naming the OM: ``om``, ``om_bs16``, ``om-vs-onnx`` …; families ``om`` and ``npu``.
_OM_SEGMENT = re.compile(r"^om($|[_-])")
_BS = re.compile(r"bs(\d+)")


@dataclass(frozen=True)
class Status:
    """One line of ``modelzoo_level.txt`` and why it has that value."""

    key: str
    value: str
    judged: bool  # False: nothing decided it; the value is NOK for want of evidence
    reason: str
    criteria: tuple[str, ...] = ()  # the ids that decided it

    def __post_init__(self) -> None:
        if self.value not in VALUES[self.key]:
            raise ValueError(f"{self.key} cannot be {self.value!r} (one of {', '.join(VALUES[self.key])})")

    def line(self) -> str:
        return f"{self.key}:{self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "criteria": list(self.criteria)}


def _segments(cid: str) -> list[str]:
    return cid.split("[", 1)[0].split(".")


def family(cid: str) -> str:
    return _segments(cid)[0]


def ran_on_npu(c: Mapping[str, Any]) -> bool:
    """True when criterion ``c`` measured something by running the OM on an NPU (see the module docstring)."""
    segments = _segments(c["id"])
    verdict = c.get("verdict")
    measured = verdict in ("pass", "fail") and c.get("measured") is not None
    if segments[0] == "accuracy":
        return measured and any(_OM_SEGMENT.match(s) for s in segments[1:])
    if segments[0] == "perf":
        return measured and len(segments) > 1 and segments[1] == "throughput"
    om_like = segments[0] in ("om", "npu") or any(_OM_SEGMENT.match(s) for s in segments[1:])
    return om_like and verdict == "pass"


def _ids(criteria: Iterable[Mapping[str, Any]], limit: int = 3) -> str:
    ids = [c["id"] for c in criteria]
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _skip_reasons(criteria: Iterable[Mapping[str, Any]], limit: int = 2) -> str:
    """The first clause of each distinct skip reason (the whole reason is in the report's "not judged" list)."""
    from vnet_accept.report.notjudged import short_reason

    reasons: dict[str, None] = {}
    for c in criteria:
        if c.get("verdict") == "skip" and c.get("reason"):
            reasons.setdefault(short_reason(c["reason"]), None)
    listed = list(reasons)[:limit]
    return "; ".join(listed) if listed else ""


def func_status(criteria: Sequence[Mapping[str, Any]]) -> Status:
    functional = [c for c in criteria if family(c["id"]) not in NON_FUNCTIONAL_FAMILIES]
    broken = [c for c in functional if c.get("verdict") in ("fail", "error")]
    if broken:
        return Status("FuncStatus", "NOK", True, f"{len(broken)} functional criteri{'a' if len(broken) > 1 else 'on'} "
                      f"failed: {_ids(broken)}", tuple(c["id"] for c in broken))
    evidence = [c for c in criteria if ran_on_npu(c)]
    if evidence:
        return Status("FuncStatus", "OK", True, f"no functional criterion failed, and the OM ran on an NPU "
                      f"({_ids(evidence)})", tuple(c["id"] for c in evidence))
    npu_skips = _skip_reasons(c for c in criteria if family(c["id"]) in ("om", "npu", "accuracy", "perf")
                              or any(_OM_SEGMENT.match(s) for s in _segments(c["id"])[1:]))
    return Status("FuncStatus", "NOK", False, "not judged: no criterion ran the OM on an NPU"
                  + (f" ({npu_skips})" if npu_skips else ""))


def precision_status(criteria: Sequence[Mapping[str, Any]]) -> Status:
    om = [c for c in criteria if _segments(c["id"])[:2] == ["accuracy", "error_rate"]
          and any(_OM_SEGMENT.match(s) for s in _segments(c["id"])[2:])]
    judged = [c for c in om if c.get("verdict") in ("pass", "fail", "error")]
    ids = tuple(c["id"] for c in judged)
    if not judged:
        skips = _skip_reasons(om)
        what = (f"every OM accuracy criterion skipped ({skips})" if om else
                "no OM accuracy criterion (accuracy.error_rate.om*) ran")
        return Status("PrecisionStatus", "NOK", False, f"not judged: {what}")
    passed = [c for c in judged if c["verdict"] == "pass"]
    if len(passed) == len(judged):
        return Status("PrecisionStatus", "OK", True, f"every OM accuracy criterion passed ({_ids(judged)})", ids)
    not_passed = [c for c in judged if c["verdict"] != "pass"]
    if not passed:
        return Status("PrecisionStatus", "NOK", True, f"no OM accuracy criterion passed ({_ids(not_passed)} "
                      "did not)", ids)
    return Status("PrecisionStatus", "POK", True, f"{len(passed)} of {len(judged)} OM accuracy criteria passed; "
                  f"{_ids(not_passed)} did not", ids)


def _batch_size(c: Mapping[str, Any]) -> int | None:
    details = c.get("details") or {}
    if isinstance(details.get("batch_size"), int):
        return details["batch_size"]
    m = _BS.search(_segments(c["id"])[-1])
    return int(m.group(1)) if m else None


def throughput_verdicts(criteria: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``perf.throughput.bs<N>`` criteria as :class:`vnet_accept.perf.rules.ThroughputVerdict` objects
    (pass -> passed, fail/error -> not passed, skip -> no verdict)."""
    from vnet_accept.perf.rules import ThroughputVerdict

    verdicts = []
    for c in criteria:
        segments = _segments(c["id"])
        if segments[:2] != ["perf", "throughput"] or (bs := _batch_size(c)) is None:
            continue
        d = c.get("details") or {}
        verdict = c.get("verdict")
        passed = True if verdict == "pass" else False if verdict in ("fail", "error") else None
        card, t4 = d.get("card_fps", c.get("measured")), d.get("t4_fps")
        ratio = d.get("ratio")
        if ratio is None and isinstance(card, (int, float)) and isinstance(t4, (int, float)) and t4 > 0:
            ratio = card / t4
        if verdict == "skip":
            ratio = None
        verdicts.append(ThroughputVerdict(
            batch_size=bs, chips_per_card=d.get("chips_per_card") or 0, chip_fps=d.get("chip_fps"), card_fps=card,
            npu_basis=d.get("statistic"), npu_sources=tuple(d.get("sources") or ()), t4_fps=t4,
            t4_basis=d.get("t4_basis"), t4_source=d.get("t4_source"), ratio=ratio, passed=passed,
            explanation=c.get("reason", "")))
    return sorted(verdicts, key=lambda v: v.batch_size)


def perf_status(criteria: Sequence[Mapping[str, Any]]) -> Status:
    from vnet_accept.perf.rules import placement

    verdicts = throughput_verdicts(criteria)
    ids = tuple(c["id"] for c in criteria if _segments(c["id"])[:2] == ["perf", "throughput"])
    result = placement(verdicts)
    if result.tier is None:
        skips = _skip_reasons(c for c in criteria if family(c["id"]) == "perf")
        return Status("PerfStatus", "NOK", False, "not judged: " + result.explanation.removeprefix("NO PLACEMENT: ")
                      + (f"; why: {skips}" if skips else ""), ids)
    note = ""
    tier_criteria = [c for c in criteria if _segments(c["id"])[:2] == ["perf", "tier"]
                     and c.get("verdict") in ("pass", "fail")]
    if tier_criteria and tier_criteria[0].get("measured") not in (None, result.tier):
        note = f"; note: perf.tier recorded {tier_criteria[0]['measured']!r}, the ratios give {result.tier!r}"
    return Status("PerfStatus", result.perf_status, True, result.explanation + note, ids)


def modelzoo_statuses(criteria: Sequence[Mapping[str, Any]],
                      settings: Mapping[str, Any] | None = None) -> list[Status]:
    """The three statuses, in file order, from the report's criteria (dicts as in ``gate-report.json``).

    With the run's ``settings``, a run that did not gate the port (stand-in weights, or a required criterion not
    judged: :mod:`vnet_accept.report.readiness`) writes ``NOK`` on every line, not judged, whatever the criteria
    alone would give - so the file agrees with the report's NOT READY TO FILE; each reason names the value the
    criteria alone gave."""
    criteria = list(criteria)
    statuses = [func_status(criteria), precision_status(criteria), perf_status(criteria)]
    if settings is None:
        return statuses
    from vnet_accept.report.readiness import readiness

    ready = readiness(criteria, settings)
    if ready.verdict != "not gated":
        return statuses
    why = "stand-in weights" if ready.standin else f"{len(ready.required_not_judged)} required criteria not judged"
    return [Status(s.key, "NOK", False, f"not gated ({why}; see the verdict), so NOK; the criteria alone give "
                   f"{s.value} ({s.reason})", s.criteria) for s in statuses]


def format_modelzoo_level(statuses: Iterable[Status]) -> str:
    """The file's text: ``Key:Value`` lines, nothing else (the model zoo's parsers read it as is)."""
    return "".join(s.line() + "\n" for s in statuses)
