"""msit/ait ``debug compare``'s per-operator CSV: found in ``--npu-results`` by its header, read as the tool's analyser
reads it, and its first operator below cosine 0.99 named in ``om.parity``'s failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from vnet_accept.ascend.op_compare import find_op_compares, parse_op_compare
from vnet_accept.errors import DataError
from vnet_accept.judge import om
from vnet_accept.tolerances import OP_MIN_COSINE, om_tolerance

CSV = Path(__file__).resolve().parents[2] / "fixtures" / "ascend" / "msit_compare_vnet_bs1.csv"


def test_the_first_operator_below_the_threshold_is_named():
    comparison = parse_op_compare(CSV)
    # TransData without ground truth, the NaN row and the :input: row are left out, as msit's analyser does
    assert [r.index for r in comparison.rows] == ["2", "3", "4", "5", "6", "7", "8", "9"]
    first = comparison.first_below(OP_MIN_COSINE)
    assert (first.index, first.onnx_op, first.cosine) == ("6", "/down_tr32/ops/ops.0/conv1/Conv", 0.96421)
    text = comparison.describe(OP_MIN_COSINE, {first.onnx_op: "down_tr32.ops.0.conv1"})
    assert text == ("first operator below cosine 0.99 in msit_compare_vnet_bs1.csv: operator #6 Conv3D (OM "
                    "/down_tr32/ops/ops.0/conv1/Conv, ONNX /down_tr32/ops/ops.0/conv1/Conv): cosine 0.9642, RED 0.266, "
                    "max |Δ| 0.812 in down_tr32.ops.0.conv1")
    assert comparison.describe(0.9).startswith("every one of 8 operators")


def test_it_is_found_where_msit_nests_it_and_other_csv_files_are_not(tmp_path):
    nested = tmp_path / "compare" / "20240917101010"
    nested.mkdir(parents=True)
    shutil.copy(CSV, nested / "result_20240917101010.csv")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    assert find_op_compares(tmp_path) == [nested / "result_20240917101010.csv"]
    with pytest.raises(DataError, match="notes.csv: not a msit/ait debug compare result"):
        parse_op_compare(tmp_path / "notes.csv")


def test_om_parity_names_the_operator_in_its_first_line():
    rng = np.random.default_rng(0)
    reference = {"0": rng.normal(size=(4, 4, 4, 2)).astype(np.float32)}
    obtained = {"0": reference["0"] + rng.normal(scale=0.5, size=(4, 4, 4, 2)).astype(np.float32)}
    phrase = parse_op_compare(CSV).describe(OP_MIN_COSINE)
    c = om.parity(obtained, reference, {"0": "scan u, tile 0"}, 1, om_tolerance(), basis="test", tiles_asked=1,
                  operators=phrase)
    first = c.explanation().splitlines()[0]
    assert c.verdict == "fail" and first.startswith("FAIL OM bs1 vs ONNX: 1 of 1 tiles outside")
    assert first.endswith("operator #6 Conv3D (OM /down_tr32/ops/ops.0/conv1/Conv, ONNX /down_tr32/ops/ops.0/conv1/"
                          "Conv): cosine 0.9642, RED 0.266, max |Δ| 0.812")
    passing = om.parity(reference, reference, {"0": "t"}, 1, om_tolerance(), basis="t", tiles_asked=1, operators=phrase)
    assert passing.verdict == "pass" and "operator" not in passing.reason
