"""The gate record: one entry per criterion, and the JSON gate report built from them.

Every gate test records its criterion through the ``gate_record`` fixture (``vnet_accept.plugin.records``):
id, description, measured value and units, threshold, verdict, the basis of the number (BN mode, dtype, per
chip/card, mean/median …), the artifacts it used with their sha256, and free-form details. The plugin gathers
the records (from xdist workers too) and writes ``gate-report.json`` once, at session end, on the controller.

Criterion ids are dotted, family first; the report's tables and pictures read these families' ``details``:

* ``parity.*``, ``batch_invariance.*``: ``details["comparison"]`` = ``CompareResult.to_dict()``.
* ``accuracy.error_rate.<source>`` (source: onnxrt, torch-cpu, om_bs1, om_bs16, …): ``measured`` = pooled
  error rate in percent; details ``incorrect``, ``total``, ``tiles``, ``volumes``, ``uids_listed``,
  ``uids_used``, ``views`` (``AccuracyReference.views``), ``ci95_pct`` ([low, high], bootstrap over volumes),
  ``per_volume`` (list of ``{uid, incorrect, total, error_rate_pct, dice, iou}``), and optionally
  ``worst_volume`` = ``{uid, error_rate_pct, npz}`` where ``npz`` holds ``ct`` (128,160,160) int16 HU,
  ``mask`` and ``prediction`` (128,160,160) uint8.
* ``perf.throughput.bs<N>``: ``measured`` = card fps; details ``batch_size``, ``chip_fps``, ``card_fps``,
  ``chips_per_card``, ``t4_fps``, ``t4_basis`` (mean/median), ``ratio``, ``statistic``, ``source``.
  ``perf.tier``: ``measured`` = Research / Official / Benchmark; details ``ratios`` {bs: ratio}.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from vnet_accept.io_utils import atomic_write_json

SCHEMA = "vnet-accept/gate-report"
SCHEMA_VERSION = 1
VERDICTS = ("pass", "fail", "skip", "error")
REPORT_JSON = "gate-report.json"
_VERSIONED_PACKAGES = ("vnet-accept", "torch", "onnx", "onnxruntime", "numpy", "scipy", "SimpleITK", "pytest")


@dataclass
class Criterion:
    id: str
    description: str
    verdict: str = "error"  # until measured: a test that dies before measuring is an error, never a pass
    measured: Any = None
    units: str = ""
    threshold: str = ""
    basis: str = ""
    reason: str = ""  # one line: why it passed/failed/was skipped
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    test: str = ""
    recorded_at: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

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


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(command_line: list[str] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    uname = platform.uname()
    info = {
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "machine": {"system": uname.system, "release": uname.release, "machine": uname.machine,
                    "node": uname.node, "processor": platform.processor() or uname.machine,
                    "cpu_count": os.cpu_count()},
        "user": _user(),
        "command_line": command_line if command_line is not None else sys.argv,
        "cwd": os.getcwd(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "toolchain": _toolchain(),
    }
    info.update(extra or {})
    return info


def _toolchain() -> dict[str, str]:
    """CANN/ATC and GPU versions where the environment says (never fails; see ``report.toolchain``)."""
    try:
        from vnet_accept.report.toolchain import toolchain_versions

        return toolchain_versions()
    except Exception as exc:  # noqa: BLE001 - provenance must never break the report
        return {"error": f"{type(exc).__name__}: {exc}"}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - containers without a passwd entry
        return "unknown"


def summarise(criteria: list[Criterion]) -> dict[str, Any]:
    counts = {v: sum(c.verdict == v for c in criteria) for v in VERDICTS}
    overall = "fail" if counts["fail"] or counts["error"] else "pass" if counts["pass"] else "no verdict"
    return {"overall": overall, "counts": counts, "criteria": len(criteria)}


def build_report(criteria: list[Criterion], prov: dict[str, Any], settings: dict[str, Any],
                 complete: bool | None = None) -> dict[str, Any]:
    """The report's JSON. ``complete``: True when ``vnet-accept gate`` finalised a run that finished, False for
    a run that did not (interrupted, collection errors, stopped early), absent (None) when a plain
    ``pytest --gate-report`` wrote it. ``vnet-accept gate`` adds ``gate`` (exit status, explanation, what the
    run was judged on), and rendering adds ``modelzoo``, ``not_judged``, ``figures`` and ``files``."""
    ordered = sorted(criteria, key=lambda c: c.id)
    report = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "summary": summarise(ordered),
              "settings": settings, "provenance": prov, "criteria": [c.to_dict() for c in ordered]}
    if complete is not None:
        report["complete"] = complete
    return report


def write_report(directory: str | os.PathLike[str], report: dict[str, Any]) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(directory / REPORT_JSON, report)


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    data = json.loads(path.read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a vnet-accept gate report (schema {data.get('schema')!r})")
    return data
