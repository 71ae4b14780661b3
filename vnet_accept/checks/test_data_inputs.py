"""The network inputs under test hold what they claim to, and cover the whole test split (SPEC §4.3, §9).

* ``data.inputs_match_manifest`` - every ``<i>.bin`` equals its tile recomputed from the normalised CT with the
  one tile definition and input scaling; a wrong mean/std, transposed axes or tiles under each other's numbers
  are named;
* ``data.uid_coverage`` - the prepared tiles cover every UID of the test split, read robustly; a last UID lost
  to a missing final newline (the port's 133 of 134) is named.

Judged by :mod:`vnet_accept.judge.data`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vnet_accept.judge import data


@pytest.mark.criterion("data.inputs_match_manifest", "the .bin inputs equal the tiles recomputed from the volumes")
def test_inputs_match_the_normalised_volumes(prepared_tiles, normalized_dataset, gate_record):
    gate_record.record(data.inputs_match_manifest(prepared_tiles, normalized_dataset))


@pytest.mark.criterion("data.uid_coverage", "the prepared tiles cover every UID of the test split")
def test_every_uid_of_the_split_is_prepared(prepared_tiles, test_uids, gate_record):
    source = Path(test_uids.source)
    gate_record.record(data.uid_coverage(test_uids, prepared_tiles.uids, f"the tiles in {prepared_tiles.directory}",
                                         uid_file=source if source.is_file() else None))
