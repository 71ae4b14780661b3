"""The network inputs under test hold what they claim to, and cover the whole test split (SPEC §4.3, §9). The
evidence comes from :mod:`vnet_accept.data.consistency`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vnet_accept.data.consistency import check_inputs, check_uid_coverage
from vnet_accept.data.uids import UidList
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.tolerances import INPUT_ATOL

#: What ``data.info_order`` requires of the port's info file.
INFO_ORDER_THRESHOLD = "every file listed once; out-of-order lines fail only for a batch-dependent ONNX"


def _details(result: Any) -> dict[str, Any]:
    return {k: v for k, v in result.to_dict().items() if k != "passed"}  # the verdict is the criterion's own


def inputs_match_manifest(manifest: Any, dataset_root: str | Path, atol: float = INPUT_ATOL, *,
                          extra_files: Sequence[str] = (), source: str = "") -> Criterion:
    """``data.inputs_match_manifest``: every ``.bin`` of ``manifest`` equals its tile recomputed from the normalised
    CT under ``dataset_root`` (one tile definition, one input scaling); a wrong mean/std, transposed axes or tiles
    under each other's numbers are named. ``manifest`` may be the port's numbering rebuilt from the masks
    (:func:`vnet_accept.data.port_tiles.port_tiles`, described by ``source``); ``extra_files`` are files in the folder
    beyond that numbering (a tile of no scan of the split), which fail too."""
    result = check_inputs(manifest, dataset_root, atol=atol)
    passed = result.passed and not extra_files
    headline, message = result.headline(), result.message()
    if extra_files:
        shown = ", ".join(extra_files[:5]) + (", …" if len(extra_files) > 5 else "")
        extra = (f"{len(extra_files)} files in {manifest.directory} beyond the numbering of the split ({shown}): "
                 "inputs of scans outside --test-uids, or a different tile-skipping rule")
        headline = (f"FAIL {extra}" if result.passed else f"{headline}; and {extra}")
        message = headline + "\n" + "\n".join(message.splitlines()[1:])
    basis = f"{result.tiles_checked} tiles in {manifest.directory}" + (f" ({source})" if source else "")
    return judged("data.inputs_match_manifest", "every prepared input equals its tile recomputed from the normalised "
                  "CT (the tile definition and input scaling of the port)", passed,
                  measured=len(result.findings) + len(extra_files), units="inputs differing",
                  threshold=f"0 (max |Δ| <= {atol:g})", basis=basis, reason=headline, message=message.rstrip(),
                  extra_files=list(extra_files[:50]), **_details(result))


def uid_coverage(split: UidList, used: Any, where: str, uid_file: Path | None = None) -> Criterion:
    """``data.uid_coverage``: the scans ``used`` (a manifest's or results folder's UIDs) are exactly the test
    split's; a last UID lost to a missing final newline (the port's 133 of 134) is named."""
    result = check_uid_coverage(split, used, where, uid_file=uid_file)
    return judged("data.uid_coverage", "the scans the tiles were prepared from are exactly the test split's UIDs",
                  result.passed, measured=result.used, units="UIDs used",
                  threshold=f"{result.listed} of {result.listed}", basis=split.describe(),
                  reason=result.headline(), message=result.headline(), **_details(result))


def info_order(order: Any, *, batch_dependent: bool, onnx_label: str) -> Criterion:
    """``data.info_order``: the port's info file (an :class:`~vnet_accept.data.port_tiles.InfoOrder`) lists every
    ``<i>.bin`` once, line ``i`` naming ``i.bin``. Out of order, the legacy tool batches other tiles together than
    the numbers suggest: a failure when the ONNX under test (``onnx_label``) is ``batch_dependent`` (batch
    statistics: the outputs change), reported but passed when it is batch-invariant. Files missing from it, or lines
    naming no file, fail either way (those tiles are not run, or the run stops)."""
    harmful = not order.in_order and batch_dependent
    passed = order.complete and not harmful
    what = order.describe()
    if not order.in_order:
        consequence = ("it changes which tiles share a batch, and the ONNX under test uses batch statistics: the "
                       "outputs depend on it - list the files in number order (sort by the number in the name, "
                       "not glob order), and export with running statistics"
                       if batch_dependent else
                       "it changes which tiles share a batch, which does not change the outputs of the batch-"
                       "invariant ONNX under test")
        what = f"{what}: {consequence}"
    head = f"{'PASS' if passed else 'FAIL'} {order.path}: {what}"
    return judged("data.info_order", "the port's info file lists every input once, in file-number order (its order "
                  "decides which tiles share a batch)", passed, measured=len(order.out_of_order),
                  units="lines out of order", threshold=INFO_ORDER_THRESHOLD,
                  basis=f"{order.path} vs {order.files} <i>.bin files; {onnx_label}",
                  reason=head.split(": ", 1)[-1], message=head, batch_dependent=batch_dependent, **order.to_dict())
