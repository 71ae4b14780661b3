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
    from vnet_accept.report.readiness import readiness

    width = width or min(shutil.get_terminal_size((100, 20)).columns, 120)
    criteria = list((report or {}).get("criteria", []))
    settings = (report or {}).get("settings") or {}
    ready = readiness(criteria, settings) if criteria else None
    word = {0: "PASS", 1: "FAIL"}.get(outcome.exit_code, "NO VERDICT")
    if outcome.exit_code == 0 and ready is not None:
        word = ready.headline  # PASS only when the port was gated, else NOT READY TO FILE
    if not outcome.complete:
        word += " (INCOMPLETE)"
    title = f" vnet-accept gate: {word} "
    lines = [title.center(width, "=")]
    if ready is not None:
        lines.append(ready.counts_text())
        lines += [f"not gated: {why}" for why in ready.reasons] if ready.verdict == "not gated" else []
    lines.append(f"exit {outcome.exit_code}: {outcome.explanation}")
    gate = (report or {}).get("gate") or {}
    if gate.get("judged_on"):
        lines.append("judged on: " + "; ".join(gate["judged_on"]))
    loose = gate.get("tests_without_criterion") or []
    if loose:  # pytest's "N passed, M skipped" counts them; the criteria counts above do not
        lines.append(f"{len(loose)} test{'s' if len(loose) != 1 else ''} recorded no criterion (counted by pytest, "
                     f"not here): {', '.join(loose[:3])}{' …' if len(loose) > 3 else ''}")
    failed = [c for c in criteria if c.get("verdict") in ("fail", "error")]
    if failed:
        lines.append("failed:")
    for c in failed[:8]:
        lines.append("  " + Criterion.from_dict(c).headline()[:width * 2])
    if len(failed) > 8:
        lines.append(f"  … and {len(failed) - 8} more failed criteria (see the report)")
    groups = not_judged(criteria, settings)
    if groups:
        lines.append("not judged (the reasons once each: the criteria section above, or the report):")
        lines += ["  " + summary_line(g, width=3) for g in groups]
    if criteria:
        statuses = modelzoo_statuses(criteria, settings)
        gated_note = " (not gated: nothing was demonstrated about the port)" if ready and \
            ready.verdict == "not gated" else ""
        lines.append("modelzoo_level.txt: " + " ".join(s.line() + ("" if s.judged or gated_note else " (not judged)")
                                                      for s in statuses) + gated_note)
    if where is not None:
        files = (report or {}).get("files") or []
        pngs, arrays = sum(f.endswith(".png") for f in files), sum(f.endswith(".npz") for f in files)
        lines.append(f"report: {where / 'gate-report.md'} (+ gate-report.json, modelzoo_level.txt, junit.xml, "
                     f"{pngs} PNG{'s' if pngs != 1 else ''}"
                     + (f", {arrays} worst-volume array{'s' if arrays != 1 else ''} (.npz)" if arrays else "") + ")")
    lines.append("=" * width)
    return lines



