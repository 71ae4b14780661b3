"""The network inputs under test hold what they claim to, and cover the whole test split (SPEC §4.3, §9).

* ``data.inputs_match_manifest`` - every ``<i>.bin`` equals its tile recomputed from the normalised CT with the
  one tile definition and input scaling; a wrong mean/std, transposed axes or tiles under each other's numbers
  are named;
* ``data.uid_coverage`` - the prepared tiles cover every UID of the test split, read robustly; a last UID lost
  to a missing final newline (the port's 133 of 134) is named;
* ``data.info_order`` - the port's info file lists every ``<i>.bin`` once, in file-number order (its order decides
  which tiles share a batch, which matters under batch statistics).

The tiles judged are the port's (``--prep-bin DIR``, mapped to (UID, tile) by its numbering rebuilt from the masks,
:mod:`vnet_accept.data.port_tiles`), else the gate's own preprocessing. Judged by :mod:`vnet_accept.judge.data`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vnet_accept.judge import data


@pytest.mark.criterion("data.inputs_match_manifest", "the .bin inputs equal the tiles recomputed from the volumes")
def test_inputs_match_the_normalised_volumes(tiles_under_test, normalized_dataset, gate_record):
    gate_record.record(data.inputs_match_manifest(tiles_under_test.manifest, normalized_dataset,
                                                  extra_files=tiles_under_test.extra_files,
                                                  source=tiles_under_test.describe()))


@pytest.mark.criterion("data.uid_coverage", "the prepared tiles cover every UID of the test split")
def test_every_uid_of_the_split_is_prepared(tiles_under_test, test_uids, gate_record):
    source = Path(test_uids.source)
    gate_record.record(data.uid_coverage(test_uids, tiles_under_test.uids, tiles_under_test.describe(),
                                         uid_file=source if source.is_file() else None))


@pytest.mark.criterion("data.info_order", "the port's info file lists every input once, in file-number order",
                        threshold=data.INFO_ORDER_THRESHOLD, units="lines out of order")
def test_info_file_order(submission_settings, tiles_under_test, onnx_under_test, gate_record):
    from vnet_accept.data.port_tiles import check_info_order

    description = "the port's info file lists every input once, in file-number order (it decides batch company)"
    if submission_settings.prep_info is None:
        gate_record.skip("data.info_order", description, "no --prep-info FILE: pass the port's vnet_prep_bin.info "
                         "(gen_dataset_info.py's output) with --prep-bin DIR to judge which tiles share a batch")
    order = check_info_order(submission_settings.prep_info, tiles_under_test.files)
    gate_record.record(data.info_order(order, batch_dependent=onnx_under_test.info.bn.batch_dependent,
                                       onnx_label=onnx_under_test.label), ("info", submission_settings.prep_info))
