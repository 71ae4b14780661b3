"""The network inputs under test hold what they claim to, and cover the whole test split (SPEC §4.3, §9).

* ``data.inputs_match_manifest`` - every ``<i>.bin`` equals its tile recomputed from the normalised CT with the
  one tile definition and input scaling; a wrong mean/std, transposed axes or tiles under each other's numbers
  are named (:func:`vnet_accept.data.consistency.check_inputs`);
* ``data.uid_coverage`` - the prepared tiles cover every UID of the test split, read robustly; a last UID lost
  to a missing final newline (the port's 133 of 134) is named (:func:`vnet_accept.data.consistency.check_uid_coverage`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vnet_accept.data.consistency import check_inputs, check_uid_coverage
from vnet_accept.tolerances import INPUT_ATOL


def _details(result) -> dict:
    return {k: v for k, v in result.to_dict().items() if k != "passed"}  # the verdict is measure()'s own argument


@pytest.mark.criterion("data.inputs_match_manifest", "the .bin inputs equal the tiles recomputed from the volumes")
def test_inputs_match_the_normalised_volumes(prepared_tiles, normalized_dataset, gate_record):
    result = check_inputs(prepared_tiles, normalized_dataset)
    c = gate_record.criterion("data.inputs_match_manifest", "every prepared input equals its tile recomputed from "
                              "the normalised CT (tile definition and input scaling of SPEC §4.3)",
                              units="inputs differing", threshold=f"0 (max |Δ| <= {INPUT_ATOL:g})",
                              basis=f"{result.tiles_checked} tiles in {prepared_tiles.directory}")
    c.measure(len(result.findings), result.passed, reason=result.headline(), **_details(result))
    c.assert_passed(result.message())


@pytest.mark.criterion("data.uid_coverage", "the prepared tiles cover every UID of the test split")
def test_every_uid_of_the_split_is_prepared(prepared_tiles, test_uids, gate_record):
    source = Path(test_uids.source)
    result = check_uid_coverage(test_uids, prepared_tiles.uids, f"the tiles in {prepared_tiles.directory}",
                                uid_file=source if source.is_file() else None)
    c = gate_record.criterion("data.uid_coverage", "the scans the tiles were prepared from are exactly the test "
                              "split's UIDs", units="UIDs used", threshold=f"{result.listed} of {result.listed}",
                              basis=test_uids.describe())
    c.measure(result.used, result.passed, reason=result.headline(), **_details(result))
    c.assert_passed()
