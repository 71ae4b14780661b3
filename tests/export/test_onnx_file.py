"""Facts about a submitted ONNX file (external data, onnx.checker, sha256) and the contract judged on them: an opset
the port's ATC does not convert and weights in a side file are each named, with the fix (SPEC §3)."""

from __future__ import annotations

import onnx
import pytest

from vnet_accept.errors import UsageError
from vnet_accept.export.inspect import BnReport, OnnxInfo, TensorInfo, inspect_onnx
from vnet_accept.export.onnx_export import ExportOptions, export_onnx
from vnet_accept.export.onnx_file import read_onnx_facts
from vnet_accept.io_utils import sha256_file
from vnet_accept.judge.export import contract
from vnet_accept.model.checkpoint import normalise_checkpoint, random_state_dict


@pytest.fixture(scope="module")
def opset11(tmp_path_factory):
    """A width-2 export at 64×80×80 (the port's contract), opset 11, weights inside."""
    ckpt = normalise_checkpoint(random_state_dict(seed=4, width=2))
    return export_onnx(ckpt.build_model("running"), tmp_path_factory.mktemp("onnx") / "vnet.onnx",
                       ExportOptions("running"))


def _new_exporter_style(source, folder):
    """What the port's script writes under torch >= 2.9 without dynamo=False (SPEC §3): opset 18, weights in
    vnet.onnx.data beside the file. Built from an opset-11 graph by re-stamping the opset import."""
    proto = onnx.load(str(source))
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 18
    folder.mkdir()
    path = folder / "vnet.onnx"
    onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="vnet.onnx.data", size_threshold=0)
    return path


def test_an_opset_18_export_with_external_data_is_named_with_the_fix(opset11, tmp_path):
    path = _new_exporter_style(opset11, tmp_path / "dynamo")
    facts = read_onnx_facts(path)
    assert facts.external_data == ("vnet.onnx.data",) and facts.missing_external == ()
    assert facts.sha256 == sha256_file(path) and facts.size == path.stat().st_size
    c = contract(inspect_onnx(path), opset=11, checker_error=facts.checker_error, external_data=facts.external_data)
    first = c.explanation().splitlines()[0]
    assert c.verdict == "fail" and first.startswith(f"FAIL {path}: opset 18: the port's ATC converts opset 11")
    assert "weights in external data (vnet.onnx.data beside the .onnx)" in first
    assert "fix: re-export with the legacy exporter: torch.onnx.export(model, dummy, 'vnet.onnx', dynamo=False, " \
           "opset_version=11" in first
    assert c.details["external_data"] == ["vnet.onnx.data"]


def test_the_same_graph_at_opset_11_with_its_weights_inside_passes(opset11):
    facts = read_onnx_facts(opset11)
    assert facts.external_data == () and facts.checker_error is None
    c = contract(inspect_onnx(opset11), opset=11, checker_error=facts.checker_error)
    assert c.verdict == "pass", c.explanation()
    assert contract(inspect_onnx(opset11), opset=13).reason.startswith("opset 11: the port's ATC converts opset 13")


def test_a_missing_side_file_is_listed(opset11, tmp_path):
    path = _new_exporter_style(opset11, tmp_path / "copied")
    (path.parent / "vnet.onnx.data").unlink()  # copied without its .data file
    assert read_onnx_facts(path).missing_external == ("vnet.onnx.data",)


def test_any_name_of_a_dynamic_batch_axis_is_dynamic():
    """The port names its dynamic axis "-1", our exporter "batch"; both are a dynamic batch."""
    def info(dim):
        return OnnxInfo("port.onnx", 11, 7, "pytorch", (TensorInfo("actual_input_1", "float32", (dim, 1, 64, 80, 80)),),
                        (TensorInfo("output1", "float32", (dim, 64, 80, 80, 2)),), {}, {},
                        BnReport({}, "none", "none", False, ""))

    assert contract(info("-1")).verdict == "pass"
    assert contract(info(None)).verdict == "pass"
    fixed = contract(info(1))
    assert fixed.verdict == "fail" and "inputs: got" in fixed.reason


@pytest.mark.parametrize("content, message", [(b"", r"is empty \(0 bytes\)"),
                                              (b"\x08\x07garbage", "not a readable ONNX")])
def test_an_unreadable_file_is_a_usage_error_naming_it(content, message, tmp_path):
    path = tmp_path / "vnet.onnx"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message) as info:
        read_onnx_facts(path)
    assert str(path) in str(info.value)
