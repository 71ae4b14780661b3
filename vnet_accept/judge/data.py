"""The network inputs under test hold what they claim to, and cover the whole test split (SPEC §4.3, §9). The
evidence comes from :mod:`vnet_accept.data.consistency`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vnet_accept.data.consistency import check_inputs, check_uid_coverage
from vnet_accept.data.uids import UidList
from vnet_accept.judge.criterion import Criterion, judged
from vnet_accept.tolerances import INPUT_ATOL


def _details(result: Any) -> dict[str, Any]:
    return {k: v for k, v in result.to_dict().items() if k != "passed"}  # the verdict is the criterion's own


def inputs_match_manifest(manifest: Any, dataset_root: str | Path, atol: float = INPUT_ATOL) -> Criterion:
    """``data.inputs_match_manifest``: every ``.bin`` of ``manifest`` equals its tile recomputed from the normalised
    CT under ``dataset_root`` (one tile definition, one input scaling); a wrong mean/std, transposed axes or tiles
    under each other's numbers are named."""
    result = check_inputs(manifest, dataset_root, atol=atol)
    return judged("data.inputs_match_manifest", "every prepared input equals its tile recomputed from the normalised "
                  "CT (the tile definition and input scaling of the port)", result.passed,
                  measured=len(result.findings), units="inputs differing", threshold=f"0 (max |Δ| <= {atol:g})",
                  basis=f"{result.tiles_checked} tiles in {manifest.directory}", reason=result.headline(),
                  message=result.message(), **_details(result))


def uid_coverage(split: UidList, used: Any, where: str, uid_file: Path | None = None) -> Criterion:
    """``data.uid_coverage``: the scans ``used`` (a manifest's or results folder's UIDs) are exactly the test
    split's; a last UID lost to a missing final newline (the port's 133 of 134) is named."""
    result = check_uid_coverage(split, used, where, uid_file=uid_file)
    return judged("data.uid_coverage", "the scans the tiles were prepared from are exactly the test split's UIDs",
                  result.passed, measured=result.used, units="UIDs used",
                  threshold=f"{result.listed} of {result.listed}", basis=split.describe(),
                  reason=result.headline(), message=result.headline(), **_details(result))
