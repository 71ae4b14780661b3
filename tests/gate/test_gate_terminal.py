"""The block the gate ends with: its last line names every file the report folder holds."""

from __future__ import annotations

from pathlib import Path

from vnet_accept.gate.outcome import Outcome
from vnet_accept.gate.terminal import verdict_block


def _files_line(files: list[str]) -> str:
    report = {"criteria": [], "settings": {}, "files": files}
    lines = verdict_block(report, Outcome(0, True, "ok"), Path("/reports/run"), width=80)
    return next(line for line in lines if line.startswith("report: "))


def test_the_files_line_counts_the_pictures_and_the_worst_volume_arrays():
    line = _files_line(["gate-report.md", "per_volume_error.png", "worst_volume.png",
                        "accuracy_error_rate_torch-cpu_worst_volume.npz"])
    assert line == ("report: /reports/run/gate-report.md (+ gate-report.json, modelzoo_level.txt, junit.xml, 2 PNGs, "
                    "1 worst-volume array (.npz))")
    assert _files_line(["parity_margins.png"]).endswith("junit.xml, 1 PNG)")
