"""The short block the gate ends with on the terminal: verdict, counts, failures' headlines, what was not judged,
``modelzoo_level.txt`` and where the report is."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vnet_accept.gate.outcome import Outcome


def verdict_block(report: Mapping[str, Any] | None, outcome: Outcome, where: Path | None,
                  width: int | None = None) -> list[str]:
    """The short block the gate ends with: verdict, counts, failures' headlines, not-judged groups, files."""
    from vnet_accept.judge.criterion import Criterion
    from vnet_accept.report.modelzoo import modelzoo_statuses
    from vnet_accept.report.notjudged import not_judged, summary_line

    width = width or min(shutil.get_terminal_size((100, 20)).columns, 120)
    word = {0: "PASS", 1: "FAIL"}.get(outcome.exit_code, "NO VERDICT")
    if not outcome.complete:
        word += " (INCOMPLETE)"
    title = f" vnet-accept gate: {word} "
    lines = [title.center(width, "=")]
    criteria = list((report or {}).get("criteria", []))
    counts = ((report or {}).get("summary") or {}).get("counts") or {}
    if criteria:
        parts = [f"{counts.get(k, 0)} {w}" for k, w in (("pass", "passed"), ("fail", "failed"),
                                                        ("error", "errored"), ("skip", "not judged"))
                 if counts.get(k)]
        lines.append(f"{len(criteria)} criteria: {', '.join(parts)}")
    lines.append(f"exit {outcome.exit_code}: {outcome.explanation}")
    gate = (report or {}).get("gate") or {}
    if gate.get("judged_on"):
        lines.append("judged on: " + "; ".join(gate["judged_on"]))
    failed = [c for c in criteria if c.get("verdict") in ("fail", "error")]
    if failed:
        lines.append("failed:")
    for c in failed[:8]:
        lines.append("  " + Criterion.from_dict(c).headline()[:width * 2])
    if len(failed) > 8:
        lines.append(f"  … and {len(failed) - 8} more failed criteria (see the report)")
    groups = not_judged(criteria)
    if groups:
        lines.append("not judged:")
        lines += ["  " + summary_line(g, width=3) for g in groups]
    if criteria:
        statuses = modelzoo_statuses(criteria)
        lines.append("modelzoo_level.txt: " + " ".join(s.line() + ("" if s.judged else " (not judged)")
                                                      for s in statuses))
    if where is not None:
        files = (report or {}).get("files") or []
        pngs = sum(f.endswith(".png") for f in files)
        lines.append(f"report: {where / 'gate-report.md'} (+ gate-report.json, modelzoo_level.txt, junit.xml, "
                     f"{pngs} PNG{'s' if pngs != 1 else ''})")
    lines.append("=" * width)
    return lines



