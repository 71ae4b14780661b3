"""What was not judged and why: skipped criteria grouped by what was missing, with how to provide it.

A criterion skips when this machine or this configuration lacks something: the trained checkpoint (seeded
stand-in weights cannot be held to the published accuracy), LUNA16 (the synthetic dataset stands in), an Ascend
NPU with CANN (or ``--npu-results`` copied from one), an NVIDIA GPU, or the project's shared reference folder.
The skip reason is the only structured trace of that (a fixture's ``pytest.skip`` carries no details), so the
grouping reads the reason: :data:`MISSING` is a table of patterns; the category whose pattern matches *earliest*
in the reason wins (reasons lead with what is missing: "seeded stand-in weights: …; pass --vnet-weights … and
--luna16-root" is about the checkpoint), ties go to the table order, and a reason that matches none lands in
``other``, shown with its own text. A criterion may also say it directly with
``details["needs"] = "<key>"`` (a key of :data:`MISSING`), which takes precedence.

A hint never asks for what was given: with the run's settings, a category whose option was given
(``--npu-results``, ``--weights``, ``--luna16``, ``--shared-dir``) is not a candidate - the reason is about
something else that option's input lacked, and the next matching category (or ``other``, with the criterion's own
reason) says what.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Missing:
    key: str
    label: str  # "an Ascend NPU"
    provide: str  # how to provide it, one sentence
    pattern: re.Pattern[str]
    given_by: tuple[str, ...] = ()  # the options (dest) that provide it: once given, never asked for again


def _p(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), re.IGNORECASE)


#: What a skipped criterion can lack (the earliest match in the reason wins; ties go to this order).
MISSING: tuple[Missing, ...] = (
    Missing("npu", "an Ascend NPU (CANN, atc, ais_bench/benchmark, npu-smi)",
            "run the gate on an Ascend 310/310P host after sourcing CANN's set_env.sh, or copy the results and logs "
            "from one and pass --npu-results DIR (with --soc-version)",
            _p(r"\bnpu\b", r"\bascend", r"\batc\b", r"ais_bench", r"\bcann\b", r"npu-smi", r"--npu-results",
               r"benchmark\.(x86_64|aarch64)", r"legacy benchmark", r"soc[ _-]?version", r"chips per card",
               r"\bom\b", r"\.om\b"), ("npu_results",)),
    Missing("gpu", "an NVIDIA GPU (CUDA-enabled PyTorch, TensorRT)",
            "run on a host with an NVIDIA GPU and a CUDA build of PyTorch (tox -e gpu); for T4 thresholds from your "
            "own trtexec logs pass --t4-logs",
            _p(r"\bcuda\b", r"\bgpu\b", r"nvidia", r"trtexec", r"tensorrt")),
    Missing("checkpoint", "the trained checkpoint (vnet_model_best.pth.tar)",
            "pass --weights vnet_model_best.pth.tar (the port's trained checkpoint; seeded stand-in weights cannot "
            "be held to the published accuracy)",
            _p(r"--vnet-weights", r"--weights", r"\btrained\b", r"\bseeded\b", r"stand-in", r"random weights",
               r"checkpoint"), ("vnet_weights",)),
    Missing("luna16", "the LUNA16 dataset",
            "pass --luna16 ROOT (raw or normalised layout) and --test-uids FILE (the test split's UID list)",
            _p(r"luna16", r"--luna16", r"synthetic (data|scan)", r"--test-uids", r"test split"), ("luna16_root",)),
    Missing("shared", "the project's shared reference folder",
            "pass --shared-dir DIR (the project's reference folder: the port's transcripts, real masks) or set "
            "VNET_ACCEPT_SHARED=DIR",
            _p(r"--shared-dir", r"VNET_ACCEPT_SHARED", r"shared reference folder", r"reference/transcripts"),
            ("shared_dir",)),
)
MISSING_BY_KEY: Mapping[str, Missing] = {m.key: m for m in MISSING}
OTHER = Missing("other", "other reasons", "see each reason below", re.compile(r"(?!)"))


def short_reason(reason: str, limit: int = 90) -> str:
    """The first clause of a reason (up to ``limit`` characters), for a place that refers to the full one."""
    head = re.split(r"(?<=[^\d]);|: (?=[a-z])", reason, maxsplit=1)[0].strip()
    return head if len(head) <= limit else head[:limit - 1].rstrip() + "…"


def provided(settings: Mapping[str, Any] | None) -> set[str]:
    """The :data:`MISSING` keys the run's settings provide (their option was given)."""
    settings = settings or {}
    return {m.key for m in MISSING if m.given_by and all(settings.get(dest) for dest in m.given_by)}


def classify(reason: str, needs: str | None = None, given: Iterable[str] = ()) -> Missing:
    """What a skip with this ``reason`` lacked (``needs``, a :data:`MISSING` key, wins when given); categories in
    ``given`` (see :func:`provided`) are not candidates."""
    given = set(given)
    if needs and needs in MISSING_BY_KEY and needs not in given:
        return MISSING_BY_KEY[needs]
    best: tuple[int, int, Missing] | None = None
    best_given: tuple[int, int, Missing] | None = None
    for rank, missing in enumerate(MISSING):
        m = missing.pattern.search(reason or "")
        if not m:
            continue
        if missing.key in given:
            if best_given is None or (m.start(), rank) < best_given[:2]:
                best_given = (m.start(), rank, missing)
        elif best is None or (m.start(), rank) < best[:2]:
            best = (m.start(), rank, missing)
    if best is not None:
        return best[2]
    if best_given is not None:  # about what was given: its input lacks something, which the reason names
        return given_but_incomplete(best_given[2])
    return OTHER


def given_but_incomplete(missing: Missing) -> Missing:
    """The group of skips about an input that was given but lacks something (the reasons say what)."""
    options = ", ".join("--" + dest.replace("_", "-") for dest in missing.given_by)
    return Missing(f"{missing.key}-incomplete", f"{missing.label}: given ({options}), but something it needs is "
                   "missing", "see each reason: it names what the input lacks", re.compile(r"(?!)"), missing.given_by)


@dataclass
class NotJudgedGroup:
    missing: Missing
    criteria: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """The distinct reasons, in first-seen order."""
        seen: dict[str, None] = {}
        for c in self.criteria:
            seen.setdefault(c.get("reason") or "no reason given", None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        return {"missing": self.missing.key, "label": self.missing.label, "provide": self.missing.provide,
                "criteria": [c["id"] for c in self.criteria], "reasons": self.reasons}


def not_judged(criteria: Iterable[Mapping[str, Any]], settings: Mapping[str, Any] | None = None
               ) -> list[NotJudgedGroup]:
    """Skipped criteria grouped by what was missing, in :data:`MISSING` order, ``other`` last; with the run's
    ``settings``, never by something that was given (see the module docstring)."""
    given = provided(settings)
    groups: dict[str, NotJudgedGroup] = {}
    for c in criteria:
        if c.get("verdict") != "skip":
            continue
        details = c.get("details") or {}
        missing = classify(c.get("reason", ""), details.get("needs") if isinstance(details, Mapping) else None,
                           given)
        groups.setdefault(missing.key, NotJudgedGroup(missing)).criteria.append(dict(c))
    order = [k for m in MISSING for k in (m.key, f"{m.key}-incomplete")] + [OTHER.key]
    return [groups[k] for k in order if k in groups]


def reason_numbers(groups: Iterable[NotJudgedGroup]) -> dict[str, int]:
    """Each distinct skip reason's number, in the order "What was not judged and why" lists them: the terminal's
    criteria section and the report number them alike."""
    numbers: dict[str, int] = {}
    for g in groups:
        for reason in g.reasons:
            numbers.setdefault(reason, len(numbers) + 1)
    return numbers


def summary_line(group: NotJudgedGroup, width: int = 4) -> str:
    """``"an Ascend NPU: 12 criteria (accuracy.error_rate.om_bs1, …) — run the gate on …"``."""
    ids = [c["id"] for c in group.criteria]
    shown = ", ".join(ids[:width]) + (f", … ({len(ids) - width} more)" if len(ids) > width else "")
    n = len(ids)
    provide = group.missing.provide
    if group.missing is OTHER or group.missing.key.endswith("-incomplete"):  # the reason itself says what
        reasons = group.reasons
        provide = reasons[0] + (f" (and {len(reasons) - 1} other reasons)" if len(reasons) > 1 else "")
    return f"{group.missing.label}: {n} criteri{'a' if n != 1 else 'on'} ({shown}) — {provide}"
