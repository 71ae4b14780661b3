"""The gate's section of the report (what the run was judged on, the outcome, the command line) and the evidence
copied into the report folder, so the folder is self-contained."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vnet_accept.gate.outcome import Outcome
from vnet_accept.gate.session import GateSession


def judged_on(settings: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    lines = []
    if facts.get("weights"):
        w = facts["weights"]
        lines.append(f"checkpoint {w['path']} (sha256 {w['sha256'][:12]}…)")
    else:
        lines.append("seeded stand-in weights (no --weights: not the trained checkpoint)")
    if facts.get("onnx"):
        o = facts["onnx"]
        lines.append(f"ONNX under test {o['path']} (--onnx, sha256 {o['sha256'][:12]}…)")
    else:
        lines.append("reference export (no --onnx given: the gate's own export of the checkpoint is judged)")
    if facts.get("prep_bin"):
        p = facts["prep_bin"]
        lines.append(f"the port's tiles in {p['dir']} ({p['files']} .bin files, --prep-bin"
                     + (f"; info file {p['info']}" if p.get("info") else "") + ")")
    if facts.get("luna16"):
        d = facts["luna16"]
        lines.append(f"LUNA16 at {d['root']} ({' and '.join(d['layouts'])} layout)")
    else:
        lines.append(f"synthetic LUNA16-like dataset ({settings.get('synthetic_scans')} scans, seed "
                     f"{settings.get('synthetic_seed')}; no --luna16)")
    if facts.get("test_uids"):
        u = facts["test_uids"]
        lines.append(f"{u['count']} test UIDs from {u['file']}")
    lines.append(f"NPU results from {settings['npu_results']}" if settings.get("npu_results")
                 else "no --npu-results (NPU criteria need CANN on this machine)")
    return lines


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def finalise_report(report: dict[str, Any], outcome: Outcome, session: GateSession, argv: Sequence[str],
                    pytest_args: Sequence[str], pytest_code: int, target: Path,
                    staging: Path | None = None) -> dict[str, Any]:
    """The gate's part of the report. pytest wrote into ``staging``, which is gone once published: the settings
    and pytest's arguments name ``target``, where the report lives."""
    report["complete"] = outcome.complete
    report["settings"] = {**{k: _jsonable(v) for k, v in session.settings.items()}, **report.get("settings", {})}
    if "gate_report" in report["settings"]:
        report["settings"]["gate_report"] = str(target)
    prov = report.setdefault("provenance", {})
    prov["command_line"] = ["vnet-accept", "gate", *argv]
    prov["pytest_args"] = [arg.replace(str(staging), str(target)) if staging else arg for arg in pytest_args]
    prov["ini_file"] = session.inipath
    prov["rootdir"] = session.rootpath
    report["gate"] = {
        "exit_code": outcome.exit_code, "pytest_exit_code": int(pytest_code), "explanation": outcome.explanation,
        "judged_on": judged_on(session.settings, session.facts), "inputs": session.facts,
        "failed_tests": [t for t in session.failed_tests if not t.get("criterion")],
        "collection_errors": session.collection_errors, "stopped_early": session.stopped_early,
        "interrupted": session.interrupted, "tests_selected": session.selected,
        "tests_deselected": session.deselected, "report_dir": str(target),
        "tests_without_criterion": session.tests_without_criterion,
    }
    return report


MAX_EVIDENCE_BYTES = 64 << 20


def copy_evidence(report: dict[str, Any], directory: Path) -> list[str]:
    """Copy the worst volumes' arrays (``details.worst_volume.npz``) into the report folder, so the folder is
    self-contained and ``vnet-accept report`` can draw the picture again after the cache is gone."""
    copied = []
    for c in report.get("criteria", []):
        worst = (c.get("details") or {}).get("worst_volume")
        npz = Path(str(worst.get("npz"))) if isinstance(worst, Mapping) and worst.get("npz") else None
        if npz is not None and not npz.is_absolute():  # already in the report folder, named relative to it
            npz = directory / npz
        if npz is None or not npz.is_file() or npz.stat().st_size > MAX_EVIDENCE_BYTES:
            continue
        if npz.parent.resolve() == directory.resolve():  # written next to the report already (--gate-report)
            copied.append(npz.name)
            continue
        name = f"{c['id'].split('[', 1)[0]}.worst_volume.npz"
        shutil.copyfile(npz, directory / name)
        copied.append(name)
    report["files"] = [*report.get("files", []), *copied]
    return copied
