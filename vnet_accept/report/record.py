"""The gate record: one entry per criterion, and the JSON gate report built from them.

Every gate test records its criterion through the ``gate_record`` fixture (``vnet_accept.plugin.records``):
id, description, measured value and units, threshold, verdict, the basis of the number (BN mode, dtype, per
chip/card, mean/median …), the artifacts it used with their sha256, and free-form details. The plugin gathers
the records (from xdist workers too) and writes ``gate-report.json`` once, at session end, on the controller.

Criterion ids are dotted, family first; the report's tables and pictures read these families' ``details``:

* ``parity.*``, ``batch_invariance.*``: ``details["comparison"]`` = ``CompareResult.to_dict()``.
* ``accuracy.error_rate.<source>`` (source: onnxrt, torch-cpu, om_bs1, om_bs16, …, selftest_model): ``measured``
  = pooled error rate in percent; details ``subject`` (``"port"``: the port under test; ``"selftest"``: the
  self-test's own model, never shown as the port's), ``incorrect``, ``total``, ``tiles``, ``volumes``,
  ``uids_listed``, ``uids_used``, ``views`` (``AccuracyReference.views``; subject ``"port"`` only),
  ``ci95_pct`` ([low, high], bootstrap over volumes; null below ``metrics.accuracy.MIN_CI_VOLUMES`` volumes, too
  few for an interval), ``per_volume`` (list of ``{uid, incorrect, total, error_rate_pct, dice, iou}``), and optionally
  ``worst_volume`` = ``{uid, error_rate_pct, npz}`` where ``npz`` holds ``ct`` (128,160,160) int16 HU,
  ``mask`` and ``prediction`` (128,160,160) uint8.
* ``perf.throughput.bs<N>``: ``measured`` = card fps; details ``batch_size``, ``chip_fps``, ``card_fps``,
  ``chips_per_card``, ``t4_fps``, ``t4_basis`` (mean/median), ``t4_gpu``, ``t4_tensorrt_version`` (what the T4
  figure was measured with), ``ratio``, ``statistic``, ``source``.
  ``perf.tier``: ``measured`` = Research / Official / Benchmark; details ``ratios`` {bs: ratio}.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import sys
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from vnet_accept.io_utils import atomic_write_json
from vnet_accept.judge.criterion import VERDICTS, Criterion

SCHEMA = "vnet-accept/gate-report"
#: 2: ``summary.overall`` is the run's verdict on the port (``ready``, ``not gated``, ``fail``, ``no verdict``, as
#: ``readiness.verdict``); in 1 it said ``pass`` when nothing failed, also for a port that was not gated. Also
#: since 2: an error rate's ``ci95_pct`` is null below ten volumes.
SCHEMA_VERSION = 2
REPORT_JSON = "gate-report.json"
_VERSIONED_PACKAGES = ("vnet-accept", "torch", "onnx", "onnxruntime", "numpy", "scipy", "SimpleITK", "pytest")


# --- the details contract, checked when a criterion is recorded -------------------------------------------------
SUBJECTS = ("port", "selftest")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_per_volume(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return (f"details.per_volume is a {type(value).__name__}; the contract is a list of "
                "{uid, incorrect, total, error_rate_pct, dice, iou} records (VolumeResult.to_dict())")
    for i, row in enumerate(value):
        if not isinstance(row, dict) or not isinstance(row.get("uid"), str) or not _is_number(
                row.get("error_rate_pct")) or not all(isinstance(row.get(k), int) for k in ("incorrect", "total")):
            return (f"details.per_volume[{i}] is {row!r:.120}; each record needs uid (str), incorrect and total "
                    "(int) and error_rate_pct (number)")
    return None


def _check_accuracy(details: dict[str, Any]) -> list[str]:
    problems = []
    if ("subject" in details or "per_volume" in details) and details.get("subject") not in SUBJECTS:
        problems.append(f"details.subject is {details.get('subject')!r}; say whose model the figures are of: "
                        f"one of {', '.join(SUBJECTS)}")
    if "per_volume" in details:
        problems.append(_check_per_volume(details["per_volume"]))
    worst = details.get("worst_volume")
    if worst is not None and not (isinstance(worst, dict) and isinstance(worst.get("uid"), str)
                                  and _is_number(worst.get("error_rate_pct"))):
        problems.append(f"details.worst_volume is {worst!r:.120}; the contract is {{uid, error_rate_pct, npz}}")
    for key in ("incorrect", "total", "tiles", "volumes"):
        if key in details and not isinstance(details[key], int):
            problems.append(f"details.{key} is {details[key]!r}; an int count")
    return [p for p in problems if p]


def _check_comparison(details: dict[str, Any]) -> list[str]:
    comparison = details.get("comparison")
    if comparison is None:
        return []
    if not isinstance(comparison, dict) or not _is_number(comparison.get("max_abs")):
        return [f"details.comparison is {comparison!r:.120}; the contract is CompareResult.to_dict()"]
    return []


def _check_throughput(details: dict[str, Any]) -> list[str]:
    return [f"details.{key} is {details[key]!r}; a number (fps or ratio) or null"
            for key in ("chip_fps", "card_fps", "t4_fps", "ratio")
            if details.get(key) is not None and not _is_number(details[key])]


#: Which families' details the report reads, and their checks (see the module docstring).
DETAIL_CHECKS = {
    ("accuracy", "error_rate"): _check_accuracy,
    ("parity",): _check_comparison,
    ("batch_invariance",): _check_comparison,
    ("batch_dependence_detected",): _check_comparison,
    ("perf", "throughput"): _check_throughput,
}


def accuracy_subject(c: dict[str, Any]) -> str:
    """Whose model an ``accuracy.error_rate.*`` criterion measured: ``details.subject``; reports written before
    the field existed are told apart by the id (the self-test's source is ``selftest_model``)."""
    subject = (c.get("details") or {}).get("subject")
    if subject in SUBJECTS:
        return subject
    return "selftest" if c["id"].split("[", 1)[0].split(".")[2:3] == ["selftest_model"] else "port"


def detail_problems(cid: str, details: dict[str, Any]) -> list[str]:
    """What in ``details`` breaks the contract the report's tables and figures read (empty: all fine)."""
    segments = cid.split("[", 1)[0].split(".")
    for prefix, check in DETAIL_CHECKS.items():
        if tuple(segments[:len(prefix)]) == prefix:
            return check(details)
    return []


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


def summarise(criteria: list[Criterion], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """``overall`` is the verdict on the port (:func:`vnet_accept.report.readiness.readiness`): a script reading it
    never sees a pass for a run that did not gate the port (stand-in weights, a required criterion not judged)."""
    from vnet_accept.report.readiness import readiness

    counts = {v: sum(c.verdict == v for c in criteria) for v in VERDICTS}
    overall = readiness([c.to_dict() for c in criteria], settings).verdict
    return {"overall": overall, "counts": counts, "criteria": len(criteria)}


def _relative_to(path: str, folder: Path) -> str:
    try:
        return str(Path(path).absolute().relative_to(folder))
    except ValueError:
        return path


def _with_final_paths(c: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``c`` with the files inside the report folder named relative to it (their final names, wherever the folder
    is published)."""
    for artifact in c.get("artifacts", {}).values():
        if artifact.get("path"):
            artifact["path"] = _relative_to(artifact["path"], folder)
    worst = c.get("details", {}).get("worst_volume")
    if isinstance(worst, dict) and worst.get("npz"):
        worst["npz"] = _relative_to(str(worst["npz"]), folder)
    return c


def build_report(criteria: list[Criterion], prov: dict[str, Any], settings: dict[str, Any],
                 complete: bool | None = None, report_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The report's JSON. ``complete``: True when ``vnet-accept gate`` finalised a run that finished, False for
    a run that did not (interrupted, collection errors, stopped early), absent (None) when a plain
    ``pytest --gate-report`` wrote it. Files inside ``report_dir`` are named relative to it. ``vnet-accept gate``
    adds ``gate`` (exit status, explanation, what the run was judged on), and rendering adds ``modelzoo``,
    ``not_judged``, ``figures``, ``render_errors`` and ``files``."""
    ordered = sorted(criteria, key=lambda c: c.id)
    dicts = [c.to_dict() for c in ordered]
    if report_dir is not None:
        dicts = [_with_final_paths(c, Path(report_dir).absolute()) for c in dicts]
    report = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "summary": summarise(ordered, settings),
              "settings": settings, "provenance": prov, "criteria": dicts}
    if complete is not None:
        report["complete"] = complete
    return report


def write_report(directory: str | os.PathLike[str], report: dict[str, Any]) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(directory / REPORT_JSON, report)


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a ``gate-report.json`` (:func:`report_problem`); ``ValueError`` naming the file and the
    first bad field, ``OSError`` when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); the file is truncated or damaged") from None
    problem = report_problem(data)
    if problem:
        raise ValueError(f"{path} is not a vnet-accept gate report this version can read: {problem}")
    return data


def report_problem(data: Any) -> str | None:
    """The first thing in a report's JSON that the renderers cannot rely on (``None``: nothing)."""
    if not isinstance(data, dict):
        return f"the top level is a {type(data).__name__}, a JSON object is expected"
    if data.get("schema") != SCHEMA:
        return f"schema is {data.get('schema')!r}, {SCHEMA!r} expected"
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"schema_version is {version!r}, an integer >= 1 expected"
    if version > SCHEMA_VERSION:
        return f"schema_version {version} is newer than this vnet-accept reads ({SCHEMA_VERSION}); upgrade it"
    summary = data.get("summary")
    if not isinstance(summary, dict) or not isinstance(summary.get("overall"), str):
        return "summary.overall is missing (summary must be an object with overall and counts)"
    if not isinstance(summary.get("counts", {}), dict):
        return "summary.counts is not an object"
    for key in ("settings", "provenance", "gate"):
        if key in data and not isinstance(data[key], dict):
            return f"{key} is a {type(data[key]).__name__}, an object is expected"
    gate = data.get("gate") or {}
    if "exit_code" in gate and (not isinstance(gate["exit_code"], int) or isinstance(gate["exit_code"], bool)):
        return f"gate.exit_code is {gate['exit_code']!r}, an integer is expected"
    if "complete" in data and not isinstance(data["complete"], bool):
        return f"complete is {data['complete']!r}, true or false expected"
    criteria = data.get("criteria")
    if not isinstance(criteria, list):
        return "criteria is missing or not a list"
    for i, c in enumerate(criteria):
        where = f"criteria[{i}]"
        if not isinstance(c, dict):
            return f"{where} is a {type(c).__name__}, an object is expected"
        if not isinstance(c.get("id"), str) or not c["id"]:
            return f"{where}.id is {c.get('id')!r}, a criterion id such as parity.onnxrt_vs_torch is expected"
        where = f"criteria[{i}] ({c['id']})"
        if c.get("verdict") not in VERDICTS:
            return f"{where}.verdict is {c.get('verdict')!r}, one of {', '.join(VERDICTS)} expected"
        for key in ("description", "units", "threshold", "basis", "reason"):
            if key in c and c[key] is not None and not isinstance(c[key], str):
                return f"{where}.{key} is {c[key]!r}, a string is expected"
        for key in ("details", "artifacts"):
            if key in c and not isinstance(c[key], dict):
                return f"{where}.{key} is a {type(c[key]).__name__}, an object is expected"
    return None
