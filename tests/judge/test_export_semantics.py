"""``export.bn_semantics`` measured: which semantics an ONNX file reproduces (ONNX Runtime on one batch against PyTorch
in each semantics), and the verdict against ``--bn-mode``; ``export.batch_invariant`` on the port's file."""

from __future__ import annotations

import numpy as np

from vnet_accept.export.inspect import BnReport, OnnxInfo
from vnet_accept.judge.export import (
    MERGED_AT_BS1,
    batch_invariant,
    bn_semantics,
    implemented_semantics,
    measure_bn_semantics,
)
from vnet_accept.tolerances import parity_tolerance

RNG = np.random.default_rng(1)
TORCH = {mode: RNG.normal(size=(4, 2, 4, 4, 2)).astype(np.float32) for mode in ("batch", "instance", "running")}


def _info(semantics: str) -> OnnxInfo:
    kinds = {"batch": ("training-form BatchNormalization", True), "running": ("inference BatchNormalization", False),
             "none": ("none", False)}
    kind, dependent = kinds[semantics]
    return OnnxInfo("vnet.onnx", 11, 7, "p", (), (), {}, {}, BnReport({kind: 24}, kind, semantics, dependent,
                                                                       f"24 {kind}"))


def test_the_semantics_reproduced_is_named_with_the_distances():
    m = measure_bn_semantics(TORCH["batch"] + 1e-7, TORCH, parity_tolerance())
    assert (m.closest, m.clear, m.reproduces, m.batch_size) == ("batch", True, True, 4)
    assert m.describe().startswith("reproduces PyTorch in BATCH semantics at bs4 (max |Δ log-prob| batch 1")


def test_a_changed_weight_is_still_closest_to_its_semantics_but_reproduces_none():
    m = measure_bn_semantics(TORCH["running"] + 3e-3, TORCH, parity_tolerance())
    assert (m.closest, m.clear, m.reproduces) == ("running", True, False)
    assert "closest to, but outside the parity tolerance of," in m.describe()


def test_two_semantics_equally_close_are_ambiguous_and_bs1_merges_batch_and_instance():
    between = (TORCH["batch"] + TORCH["instance"]) / 2
    assert not measure_bn_semantics(between, TORCH, parity_tolerance()).clear
    one = {mode: out[:1] for mode, out in TORCH.items()}
    m = measure_bn_semantics(one["instance"], one, parity_tolerance())
    assert m.closest == MERGED_AT_BS1 and set(m.distances) == {MERGED_AT_BS1, "running"}


def test_a_batch_statistics_file_contradicts_bn_mode_running_and_names_the_fix():
    m = measure_bn_semantics(TORCH["batch"], TORCH, parity_tolerance())
    c = bn_semantics(_info("batch"), "running", measured=m)
    assert c.verdict == "fail" and c.measured == "batch"
    first = c.explanation().splitlines()[0]
    assert first.startswith("FAIL vnet.onnx: implements BATCH BN, --bn-mode declares running - graph: batch")
    assert "measured: reproduces PyTorch in BATCH semantics" in first and "fix: export with running statistics" in first
    assert bn_semantics(_info("batch"), "batch", measured=m).verdict == "pass"


def test_folded_bn_is_decided_by_the_measurement():
    """The new exporter folds BN into the convolutions: no BN node, so only running the file tells."""
    running = measure_bn_semantics(TORCH["running"], TORCH, parity_tolerance())
    assert bn_semantics(_info("none"), "running", measured=running).verdict == "pass"
    instance = measure_bn_semantics(TORCH["instance"], TORCH, parity_tolerance())
    c = bn_semantics(_info("none"), "running", measured=instance)
    assert c.verdict == "fail" and "implements INSTANCE BN" in c.reason
    assert implemented_semantics(_info("none"), instance, "running") == "instance"
    assert implemented_semantics(_info("batch"), None, "running") == "batch"


def test_the_ports_batch_dependent_file_is_named_as_the_ports_defect():
    alone = TORCH["batch"]
    c = batch_invariant(_info("batch"), alone, {4: alone + 0.02}, 1e-5, basis="test", port_file=True)
    first = c.explanation().splitlines()[0]
    assert first.startswith("FAIL vnet.onnx: batch-dependent BN - max |Δ log-prob| 0.02 between a sample alone and "
                            "inside a batch of 4 (limit 1e-05)")
    assert "a defect of the port's ONNX (the file under test)" in first and c.details["defect_of"] == "the port's ONNX"
