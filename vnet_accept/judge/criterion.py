"""The record of one criterion: what every judgement returns, the gate records and the report renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

VERDICTS = ("pass", "fail", "skip", "error")


@dataclass
class Criterion:
    """One criterion's verdict. ``reason`` is one line (why it passed, failed or was not judged); ``message`` is the
    whole explanation a failure shows (its first line holds the verdict and the key numbers: pytest's short
    summary shows only that line); ``details`` hold what the report's tables and figures read."""

    id: str
    description: str
    verdict: str = "error"  # until measured: a test that dies before measuring is an error, never a pass
    measured: Any = None
    units: str = ""
    threshold: str = ""
    basis: str = ""
    reason: str = ""
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    test: str = ""
    recorded_at: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Criterion:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def headline(self) -> str:
        value = self.measured if not isinstance(self.measured, float) else f"{self.measured:.6g}"
        shown = f"{value} {self.units}".strip() if self.measured is not None else "not measured"
        limit = f" (threshold {self.threshold})" if self.threshold else ""
        return f"{self.verdict.upper():5} {self.id}: {shown}{limit}" + (f" — {self.reason}" if self.reason else "")

    def explanation(self) -> str:
        """What a failure shows: the message, else the headline."""
        return self.message or self.headline()

    def not_judged(self, reason: str) -> Criterion:
        """The same measurement, not judged (a skip that keeps the numbers): e.g. an error rate of stand-in weights."""
        return replace(self, verdict="skip", reason=reason)


def judged(cid: str, description: str, passed: bool | None, *, measured: Any = None, units: str = "",
           threshold: str = "", basis: str = "", reason: str = "", message: str = "",
           artifacts: dict[str, dict[str, str]] | None = None, **details: Any) -> Criterion:
    """A criterion measured and judged: ``passed`` True/False, or None for "measured, nothing to judge it against"
    (recorded as a skip with ``reason``)."""
    verdict = "skip" if passed is None else "pass" if passed else "fail"
    return Criterion(cid, description, verdict, measured, units, threshold, basis, reason,
                     dict(artifacts or {}), dict(details), message=message)
