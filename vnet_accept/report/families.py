"""Criterion families: the groups a reader thinks in (the README's table), for the one-line-per-family summaries.

A criterion's family comes from its id: GPU criteria are the ones about CUDA, whatever their first segment
(``parity.onnxrt_vs_torch_cuda.*``, ``batch_invariance.torch-cuda-*``, ``numerics.torch_cuda.*``); the OM's
criteria are ``om.*`` and the OM's error rate ``accuracy.error_rate.om_bs<N>``; otherwise the first segment
decides (``inspect.*`` is part of export, ``batch_dependence_detected.*`` of batch invariance).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: (key, label), in the order a reader follows the chain.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("data", "data"), ("checkpoint", "checkpoint"), ("export", "export"), ("parity", "parity"),
    ("batch_invariance", "batch invariance"), ("accuracy", "accuracy (CPU chain)"),
    ("om", "NPU: the OM"), ("perf", "NPU: throughput"), ("gpu", "GPU"), ("selftest", "self-test"),
)
LABELS = dict(FAMILIES)
_FIRST_SEGMENT = {"inspect": "export", "batch_dependence_detected": "batch_invariance", "npu": "om"}


def family_of(cid: str) -> str:
    segments = cid.split("[", 1)[0].split(".")
    if "cuda" in cid.lower():
        return "gpu"
    if segments[:2] == ["accuracy", "error_rate"] and len(segments) > 2 and segments[2].startswith("om"):
        return "om"
    return _FIRST_SEGMENT.get(segments[0], segments[0])


def label_of(family: str) -> str:
    return LABELS.get(family, family)


def by_family(criteria: Iterable[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """``[(family, criteria)]`` in :data:`FAMILIES` order, other families after them alphabetically."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for c in criteria:
        groups.setdefault(family_of(c["id"]), []).append(c)
    order = [key for key, _ in FAMILIES]
    return sorted(groups.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
