"""Whether a run gated the port: the one verdict the terminal block, ``gate-report.md`` and ``modelzoo_level.txt``
all state, so that none of them says a bare PASS about a port that was not judged.

A run **gates** the port when the checkpoint under test is the contributor's (``--weights``) and every required
criterion was judged: the OM's accuracy, the card's throughput and the OM's parity with ONNX Runtime, each at the
authoritative batch sizes 1 and 16 (:data:`REQUIRED_CRITERIA`). The verdicts, in order:

* ``fail`` - a criterion failed or errored (whatever else): **FAIL**, exit 1;
* ``no verdict`` - nothing passed and nothing failed (everything skipped): exit 2;
* ``not gated`` - nothing failed, but stand-in weights or a required criterion not judged: **NOT READY TO FILE**.
  The gate exits 0 (every criterion it could judge passed, so the synthetic default "succeeds"), and every line
  of ``modelzoo_level.txt`` is ``NOK`` (nothing was demonstrated about the port);
* ``ready`` - nothing failed, real weights, every required criterion judged: **PASS**, ready to file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vnet_accept.reference import AUTHORITATIVE_BATCH_SIZES

#: What must be judged (pass or fail) before a report can be filed, at bs1 and bs16.
REQUIRED_CRITERIA: tuple[str, ...] = tuple(
    f"{prefix}{bs}" for prefix in ("accuracy.error_rate.om_bs", "perf.throughput.bs", "om.parity.om_vs_onnx.bs")
    for bs in AUTHORITATIVE_BATCH_SIZES)
REQUIRED_TEXT = ("the OM's error rate (accuracy.error_rate.om_bs1/bs16), the card's throughput "
                 "(perf.throughput.bs1/bs16) and the OM's parity with ONNX Runtime (om.parity.om_vs_onnx.bs1/bs16)")
HEADLINES = {"ready": "PASS", "fail": "FAIL", "not gated": "NOT READY TO FILE", "no verdict": "NO VERDICT"}


@dataclass(frozen=True)
class Readiness:
    verdict: str  # one of HEADLINES
    counts: dict[str, int]
    total: int
    standin: bool  # the checkpoint under test was the seeded stand-in (no --weights)
    required_not_judged: tuple[tuple[str, str], ...] = ()  # (criterion id, why: its skip reason, or "not run")
    reasons: tuple[str, ...] = field(default=())  # why the run did not gate the port, one sentence each

    @property
    def headline(self) -> str:
        return HEADLINES[self.verdict]

    @property
    def gated(self) -> bool:
        return self.verdict in ("ready", "fail") and not self.reasons

    def counts_text(self) -> str:
        """``"60 of 131 criteria passed, none failed, 71 not judged"``."""
        c = self.counts
        bad = c.get("fail", 0) + c.get("error", 0)
        failed = "none failed" if not bad else f"{c.get('fail', 0)} failed" + (
            f", {c['error']} errored" if c.get("error") else "")
        return (f"{c.get('pass', 0)} of {self.total} criteri{'a' if self.total != 1 else 'on'} passed, {failed}, "
                f"{c.get('skip', 0)} not judged")

    def summary(self) -> str:
        """One sentence: the verdict and what it rests on (the terminal's and the Markdown's first line)."""
        if self.verdict == "ready":
            return f"PASS: ready to file — {self.counts_text()}; every required criterion judged"
        if self.verdict == "fail":
            return f"FAIL — {self.counts_text()}"
        if self.verdict == "no verdict":
            return f"NO VERDICT — {self.counts_text()}: nothing was judged"
        return f"NOT READY TO FILE — {self.counts_text()}; the port was not gated: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "headline": self.headline, "gated": self.gated, "summary": self.summary(),
                "standin_weights": self.standin, "reasons": list(self.reasons),
                "required": list(REQUIRED_CRITERIA),
                "required_not_judged": [{"id": cid, "why": why} for cid, why in self.required_not_judged]}


def readiness(criteria: Sequence[Mapping[str, Any]], settings: Mapping[str, Any] | None) -> Readiness:
    """The run's verdict on the port from its criteria (dicts as in ``gate-report.json``) and settings."""
    counts = {v: sum(c.get("verdict") == v for c in criteria) for v in ("pass", "fail", "skip", "error")}
    by_id = {c["id"]: c for c in criteria}
    missing = []
    for cid in REQUIRED_CRITERIA:
        c = by_id.get(cid)
        if c is None:
            missing.append((cid, "not in this run"))
        elif c.get("verdict") == "skip":
            missing.append((cid, c.get("reason") or "skipped"))
    standin = not (settings or {}).get("vnet_weights")
    reasons = []
    if standin:
        reasons.append("the checkpoint is a seeded stand-in (no --weights), so the port's own weights were not judged")
    if missing:
        ids = ", ".join(cid for cid, _ in missing)
        need = ("see each one's reason under \"not judged\"" if (settings or {}).get("npu_results") else
                "they need the OM's results from an Ascend host (--npu-results DIR) or CANN on this machine")
        reasons.append(f"{len(missing)} of {len(REQUIRED_CRITERIA)} required criteria not judged ({ids}): {need}")
    if counts["fail"] or counts["error"]:
        verdict = "fail"
    elif not counts["pass"]:
        verdict = "no verdict"
    elif reasons:
        verdict = "not gated"
    else:
        verdict = "ready"
    return Readiness(verdict, counts, len(criteria), standin, tuple(missing), tuple(reasons))
