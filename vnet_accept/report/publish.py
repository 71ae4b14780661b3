"""Rendering a report folder from ``gate-report.json``, and putting it in place atomically.

Everything is written into a staging folder, a hidden sibling of the report folder that carries an
``INCOMPLETE`` marker from its first moment. Only when every file is written is the marker removed and the
folder swapped in (rename the old one aside, rename the new one in, delete the old one). So an interrupted or
crashed run leaves either the previous complete report in place, or a folder that says it is incomplete (the
marker file, ``"complete": false`` in the JSON, a banner in the Markdown) — never a partial report that looks
complete. A run that did not finish (interrupted, collection errors, stopped at the first failure) is kept next
to the report as ``<name>.incomplete/`` and never replaces a complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vnet_accept.errors import UsageError
from vnet_accept.io_utils import atomic_write_json, atomic_write_text, process_alive
from vnet_accept.report.markdown import REPORT_MD, render_markdown
from vnet_accept.report.modelzoo import MODELZOO_FILE, format_modelzoo_level, modelzoo_statuses
from vnet_accept.report.notjudged import not_judged
from vnet_accept.report.record import REPORT_JSON

INCOMPLETE = "INCOMPLETE"
JUNIT_XML = "junit.xml"
INCOMPLETE_SUFFIX = ".incomplete"
#: Families the model zoo tables expect; each that has no criterion at all is listed as "not run".
EXPECTED_FAMILIES = {
    "accuracy": "accuracy (error rate of the OM/ONNX/PyTorch against 0.355 %): no criterion ran",
    "perf": "performance (card fps against the T4): no criterion ran",
}


# --- rendering ------------------------------------------------------------------------------------------------
def absent_families(report: Mapping[str, Any]) -> list[str]:
    present = {c["id"].split(".", 1)[0] for c in report.get("criteria", [])}
    return [text for fam, text in EXPECTED_FAMILIES.items() if fam not in present]


def render_report(report: dict[str, Any], directory: str | os.PathLike[str]) -> list[str]:
    """Write ``gate-report.md``, ``modelzoo_level.txt`` and the PNGs into ``directory`` from ``report`` (the
    JSON's contents), add the derived sections (``modelzoo``, ``not_judged``, ``figures``, ``files``,
    ``render_errors``) to the JSON and rewrite it. Returns the file names written. The caller owns atomicity
    (see :class:`Staging`).

    Rendering never loses the verdicts: a figure that cannot be drawn is named in ``figures`` and
    ``render_errors``; a Markdown renderer failure writes a plain list of the verdicts instead, naming the error."""
    from vnet_accept.report import figures as figures_module

    directory = Path(directory)
    from vnet_accept.report.readiness import readiness

    criteria = report.get("criteria", [])
    settings = report.get("settings") or {}
    statuses = modelzoo_statuses(criteria, settings)
    groups = not_judged(criteria, settings)
    report["readiness"] = readiness(criteria, settings).to_dict()
    errors: list[dict[str, str]] = []
    try:
        figures = figures_module.render_figures(report, directory)
    except Exception as exc:  # noqa: BLE001 - no picture is worth a verdict
        error = f"{type(exc).__name__}: {exc}"
        figures = {name: {"reason": f"the figures could not be drawn ({error})", "error": error}
                   for name in figures_module.FIGURES}
    errors += [{"file": f"{name}.png", "error": f["error"]} for name, f in figures.items() if f.get("error")]
    report["modelzoo"] = [s.to_dict() for s in statuses]
    report["not_judged"] = [g.to_dict() for g in groups]
    report["figures"] = figures
    names = [REPORT_JSON, REPORT_MD, MODELZOO_FILE, *(f["file"] for f in figures.values() if "file" in f)]
    if (directory / JUNIT_XML).is_file() or JUNIT_XML in (report.get("files") or []):
        names.append(JUNIT_XML)
    names += [f for f in (report.get("files") or []) if f not in names and (directory / f).is_file()]
    report["files"] = names
    report["render_errors"] = errors  # the same list: a Markdown failure below is added to it
    atomic_write_text(directory / MODELZOO_FILE, format_modelzoo_level(statuses))
    try:
        markdown = render_markdown(report, statuses, groups, figures, absent_families(report))
    except Exception as exc:  # noqa: BLE001 - the verdicts go out in a plainer form
        error = f"{type(exc).__name__}: {exc}"
        errors.append({"file": REPORT_MD, "error": error})
        markdown = fallback_markdown(report, error)
    atomic_write_text(directory / REPORT_MD, markdown)
    atomic_write_json(directory / REPORT_JSON, report)
    return names


def fallback_markdown(report: Mapping[str, Any], error: str) -> str:
    """The verdicts as a plain list, when the full Markdown could not be rendered."""
    from vnet_accept.judge.criterion import Criterion

    summary = report.get("summary") or {}
    lines = ["# VNet PyTorch → ONNX → Ascend OM: vnet-accept gate report", "",
             f"> The full report could not be rendered ({error}); this is the plain list of verdicts. "
             "`gate-report.json` holds everything; `vnet-accept report DIR` renders it again.", "",
             f"**Verdict: {(report.get('readiness') or {}).get('summary') or str(summary.get('overall')).upper()}**",
             ""]
    lines += [f"- `{Criterion.from_dict(c).headline()}`" for c in report.get("criteria", [])]
    return "\n".join(lines) + "\n"


# --- staging and the swap -------------------------------------------------------------------------------------
def check_report_dir(target: Path) -> None:
    """Refuse a report folder that would lose something: a file, or a folder that is not a gate report."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"report folder {target} is a file; pass -o with a folder name (e.g. -o gate-report)")
    if target.is_dir():
        entries = [p.name for p in target.iterdir()]
        if entries and REPORT_JSON not in entries and INCOMPLETE not in entries:
            shown = ", ".join(sorted(entries)[:3]) + (" …" if len(entries) > 3 else "")
            raise UsageError(f"report folder {target} exists and is not a gate report (it holds {shown}); the gate "
                             "replaces the whole folder — pass -o with a new or empty folder")


class Staging:
    """A hidden sibling of the report folder, marked ``INCOMPLETE`` until :meth:`publish` swaps it in."""

    def __init__(self, target: str | os.PathLike[str], note: str = "") -> None:
        self.target = Path(target).absolute()
        check_report_dir(self.target)
        parent = self.target.parent
        self._created = [p for p in (parent, *parent.parents) if not p.exists()]  # removed again by discard()
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.staging-", dir=parent))
            atomic_write_text(self.path / INCOMPLETE, incomplete_text(note or "the run is still going"))
        except OSError as exc:
            raise UsageError(f"cannot write the report folder {self.target}: {exc.strerror or exc}; pass -o with "
                             "a folder you can write to") from None
        if self.target.is_dir() and not os.access(self.target, os.W_OK | os.X_OK):
            self.discard()
            raise UsageError(f"cannot replace the report folder {self.target}: permission denied; pass -o with a "
                             "folder you can write to")

    def mark_incomplete(self, reason: str) -> None:
        atomic_write_text(self.path / INCOMPLETE, incomplete_text(reason))

    def publish(self, incomplete_reason: str | None = None) -> Path:
        """Swap the finished folder in place of the target (the previous report, if any, is removed). With
        ``incomplete_reason`` (re-rendering a report of an unfinished run) the marker stays, with that reason."""
        if incomplete_reason:
            self.mark_incomplete(incomplete_reason)
        else:
            (self.path / INCOMPLETE).unlink(missing_ok=True)
        _relax_modes(self.path)
        return _swap(self.path, self.target)

    def keep_incomplete(self, reason: str) -> Path:
        """Keep this unfinished run as ``<target>.incomplete/`` (replacing an older one there), marked."""
        self.mark_incomplete(reason)
        _mark_json_incomplete(self.path / REPORT_JSON, reason)
        _relax_modes(self.path)
        return _swap(self.path, self.target.with_name(self.target.name + INCOMPLETE_SUFFIX))

    def discard(self) -> None:
        """Remove the staging folder, and the parent folders this run created for the report, if still empty."""
        shutil.rmtree(self.path, ignore_errors=True)
        for folder in self._created:
            with contextlib.suppress(OSError):
                folder.rmdir()


def _relax_modes(folder: Path) -> None:
    """mkdtemp/mkstemp create 0700/0600; a report is for others to read (CI artifacts): apply the umask."""
    mask = os.umask(0)
    os.umask(mask)
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o777 & ~mask)
        for item in folder.iterdir():
            if item.is_file():
                os.chmod(item, 0o666 & ~mask)


def incomplete_text(reason: str) -> str:
    return (f"This vnet-accept gate report is INCOMPLETE and is not a gate result: {reason}.\n"
            f"pid {os.getpid()}, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")


def _mark_json_incomplete(path: Path, reason: str) -> None:
    if not path.is_file():
        return
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        data["complete"] = False
        data.setdefault("gate", {}).setdefault("explanation", reason)
        atomic_write_json(path, data)


def _swap(source: Path, target: Path) -> Path:
    if target.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, aside / target.name)  # same filesystem: atomic
        os.rename(source, target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(source, target)
    return target


def remove_stale_staging(target: Path) -> list[Path]:
    """Delete staging folders of ``target`` left by runs whose process is gone (a crash or a kill)."""
    removed = []
    parent = Path(target).absolute().parent
    if not parent.is_dir():
        return removed
    for folder in parent.glob(f".{Path(target).name}.staging-*"):
        marker = folder / INCOMPLETE
        try:
            pid = int(marker.read_text().split("\npid ", 1)[1].split(",", 1)[0])
        except (OSError, IndexError, ValueError):
            continue
        if pid != os.getpid() and not process_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def rerender(source: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Path:
    """``vnet-accept report DIR``: render the Markdown, ``modelzoo_level.txt`` and PNGs again from a saved
    ``gate-report.json`` (in place, or into ``output``), atomically. The JSON is validated first
    (:func:`~vnet_accept.report.record.report_problem`): an invalid one is a :class:`UsageError` naming the file
    and the field, and nothing is written anywhere; a failure while rendering leaves the report folder as it was
    (what was rendered stays in the hidden staging folder, marked INCOMPLETE)."""
    from vnet_accept.report.record import load_report

    source = Path(source)
    json_path = source / REPORT_JSON if source.is_dir() else source
    if not source.exists():
        raise UsageError(f"{source} does not exist; pass a report folder written by `vnet-accept gate` or "
                         "`pytest --gate-report DIR` (or its gate-report.json)")
    try:
        report = load_report(json_path)
    except FileNotFoundError:
        raise UsageError(f"{json_path} does not exist; pass a report folder written by `vnet-accept gate` or "
                         "`pytest --gate-report DIR`") from None
    except UnicodeDecodeError:
        raise UsageError(f"{json_path} is not UTF-8 text, so not a gate report; nothing was written - re-run the "
                         "gate") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{exc}; nothing was written - re-run the gate (or restore the file)") from None
    staging = Staging(Path(output) if output else json_path.parent, note="re-rendering")
    try:
        for item in json_path.parent.iterdir():
            if item.is_file() and not item.name.endswith(".png") and item.name != INCOMPLETE:
                shutil.copy2(item, staging.path / item.name)
        render_report(report, staging.path)
        unfinished = report.get("complete") is False
        return staging.publish((report.get("gate") or {}).get("explanation") or "the run did not finish"
                               if unfinished else None)
    except BaseException:  # the report folder stays as it was; the staging folder says it is incomplete
        staging.mark_incomplete("re-rendering failed")
        raise
