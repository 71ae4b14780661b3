"""The self-test model's shipped weights (issue 15): they belong to the current recipe, the self-test uses them
instead of training, a changed recipe trains (with one warning) instead of using stale weights, and - marked
``selftest_training``, not run by default - the recipe still produces a model as good as the shipped one."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from vnet_accept.cache import ArtifactCache
from vnet_accept.model.checkpoint import load_checkpoint, random_state_dict
from vnet_accept.model.train import TrainRecipe, TrainResult
from vnet_accept.selftest import weights
from vnet_accept.selftest.chain import SELFTEST_RECIPE, trained_checkpoint
from vnet_accept.selftest.weights import (
    META_FILE,
    REGENERATE,
    WEIGHTS_FILE,
    StaleSelftestWeights,
    load_shipped,
    recipe_sha256,
    storable,
    write_shipped,
)
from vnet_accept.tolerances import SELFTEST_MAX_ERROR_PCT, SELFTEST_RETRAIN_BAND_PP

#: Parameters of the width-4 VNet (BN buffers not counted).
WIDTH4_PARAMETERS = 2_854_306


@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(weights, "_warned", set())


def _no_training(*args, **kwargs):
    raise AssertionError("trained although the shipped weights fit the recipe")


def test_the_shipped_weights_belong_to_the_current_recipe():
    shipped = load_shipped()
    assert shipped is not None, f"no {WEIGHTS_FILE}/{META_FILE} in vnet_accept/selftest/; create them: {REGENERATE}"
    problem = shipped.problem(SELFTEST_RECIPE)
    assert problem is None, f"{problem}\nThe recipe changed since the weights were shipped; regenerate: {REGENERATE}"


def test_the_shipped_weights_are_the_width4_vnet_and_record_their_provenance():
    shipped = load_shipped()
    state = shipped.state_dict()
    assert all(t.dtype in (torch.float32, torch.int64) for t in state.values())
    model = load_checkpoint_state(state)
    assert sum(p.numel() for p in model.parameters()) == WIDTH4_PARAMETERS
    meta = shipped.meta
    assert meta["recipe"] == SELFTEST_RECIPE.to_dict() and meta["recipe_sha256"] == recipe_sha256(SELFTEST_RECIPE)
    assert {"trained", "torch", "numpy", "threads", "cpu"} <= set(meta) and meta["regenerate"] == REGENERATE
    held_out = meta["held_out"]
    assert held_out["passed"] and 0 < held_out["error_rate_pct"] <= SELFTEST_MAX_ERROR_PCT
    assert len(held_out["per_volume_pct"]) == 2 and held_out["incorrect"] / held_out["total"] * 100 == \
        pytest.approx(held_out["error_rate_pct"])
    # kernels stored as float16, everything else (BN running statistics reach ~6e4) as trained
    with np.load(shipped.path) as data:
        halves = sorted(k for k in data.files if data[k].dtype == np.float16)
        assert halves == meta["storage"]["float16"] and all(data[k].ndim == 5 for k in halves)
        assert all(data[k].dtype != np.float16 for k in data.files if "running" in k)
    assert shipped.path.stat().st_size < 6_000_000


def load_checkpoint_state(state):
    from vnet_accept.model.vnet import VNet

    model = VNet(width=4, bn_mode="running")
    model.load_state_dict(state, strict=True)
    return model


def test_the_self_test_uses_the_shipped_weights_without_training(tmp_path, monkeypatch, fresh_warnings):
    monkeypatch.setattr("vnet_accept.model.train.train_narrow_vnet", _no_training)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleSelftestWeights)
        checkpoint, record = trained_checkpoint(ArtifactCache(tmp_path))
    shipped = load_shipped()
    loaded = load_checkpoint(checkpoint)
    assert loaded.layout == "upstream"
    expected = shipped.state_dict()
    assert set(loaded.state_dict) == set(expected)
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in expected.items())
    assert record["source"].startswith(f"shipped {WEIGHTS_FILE}") and record["recipe"] == SELFTEST_RECIPE.to_dict()
    assert record["held_out_recorded"] == shipped.meta["held_out"]
    again, _ = trained_checkpoint(ArtifactCache(tmp_path))  # cached: the same file
    assert again == checkpoint


def test_a_changed_recipe_trains_instead_and_says_so_once(tmp_path, monkeypatch, fresh_warnings):
    calls = []

    def fake_training(recipe, progress=None):
        calls.append(recipe)
        return TrainResult(random_state_dict(seed=1, width=recipe.width), recipe, [0.5], 0.1, ["uid"])

    monkeypatch.setattr("vnet_accept.model.train.train_narrow_vnet", fake_training)
    changed = TrainRecipe(steps=SELFTEST_RECIPE.steps + 1)
    cache = ArtifactCache(tmp_path)
    with pytest.warns(StaleSelftestWeights) as caught:
        checkpoint, record = trained_checkpoint(cache, changed)
        trained_checkpoint(cache, changed)  # cached, and no second warning
        trained_checkpoint(ArtifactCache(tmp_path / "other"), changed)  # trains again, still one warning
    assert len(caught) == 1 and len(calls) == 2
    text = str(caught[0].message)
    assert "trained by another recipe" in text and "changed: recipe" in text and REGENERATE in text
    assert record["source"].startswith("trained with the recipe") and record["recipe"]["steps"] == changed.steps


def test_train_version_is_part_of_the_recipe_hash(monkeypatch):
    before = recipe_sha256(SELFTEST_RECIPE)
    monkeypatch.setattr(weights, "TRAIN_VERSION", weights.TRAIN_VERSION + 1)
    assert recipe_sha256(SELFTEST_RECIPE) != before
    assert "train_version" in load_shipped().problem(SELFTEST_RECIPE)


def test_storable_halves_kernels_only_and_refuses_overflow():
    state = {"conv.weight": torch.full((1, 1, 1, 1, 3), 0.1), "bn.running_var": torch.tensor([6e4, 7e4]),
             "bn.num_batches_tracked": torch.tensor(0)}
    arrays = storable(state)
    assert arrays["conv.weight"].dtype == np.float16 and arrays["bn.running_var"].dtype == np.float32
    assert arrays["bn.num_batches_tracked"].dtype == np.int64
    with pytest.raises(ValueError, match="overflow float16"):
        storable({"conv.weight": torch.full((1, 1, 1, 1, 1), 7e4)})


def test_written_weights_load_back_as_stored_and_a_tampered_file_is_refused(tmp_path):
    state = {"a.conv.weight": torch.linspace(-1, 1, 24).reshape(1, 2, 1, 3, 4), "a.bn.running_var": torch.ones(2)}
    result = TrainResult(state, SELFTEST_RECIPE, [0.9, 0.4], 1.5, ["uid-1"])
    measured = []
    shipped = write_shipped(result, tmp_path, lambda s: measured.append(s.state_dict()) or {"error_rate_pct": 0.5})
    assert shipped.problem(SELFTEST_RECIPE) is None and shipped.meta["held_out"] == {"error_rate_pct": 0.5}
    assert json.loads((tmp_path / META_FILE).read_text()) == shipped.meta
    loaded = load_shipped(tmp_path).state_dict()
    assert torch.equal(loaded["a.conv.weight"], state["a.conv.weight"].half().float())
    assert torch.equal(loaded["a.bn.running_var"], state["a.bn.running_var"])
    assert all(torch.equal(measured[0][k], loaded[k]) for k in loaded)  # measured on the weights as loaded
    assert "another recipe" in shipped.problem(TrainRecipe(seed=1))
    (tmp_path / WEIGHTS_FILE).write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    assert "sha256" in load_shipped(tmp_path).problem(SELFTEST_RECIPE)


def test_the_command_line_names_the_regeneration_command(tmp_path, capsys):
    assert weights.main(["--out", str(tmp_path)]) == 1
    assert f"regenerate: {REGENERATE}" in capsys.readouterr().out
    assert weights.main([]) == 0
    assert capsys.readouterr().out.startswith("OK ")


def test_the_training_marker_is_registered_and_deselected_by_default(pytestconfig):
    from vnet_accept.plugin import MARKERS

    assert any(line.startswith("selftest_training: ") for line in MARKERS)
    assert any(line.startswith("selftest_training: ") for line in pytestconfig.getini("markers"))
    addopts = " ".join(pytestconfig.getini("addopts"))
    assert "not accuracy and not perf and not selftest_training" in addopts


@pytest.mark.selftest_training
def test_the_recipe_still_produces_the_shipped_model(artifact_cache, tmp_path):
    """Retrain with the recipe and put the retrained and the shipped weights through the same held-out chain: both
    within the self-test threshold, and within SELFTEST_RETRAIN_BAND_PP of each other (see its comment). Where the
    training ran on the shipped weights' torch build, thread count and CPU, the retrained weights are the shipped
    ones up to their float16 storage."""
    from vnet_accept.model.checkpoint import save_checkpoint
    from vnet_accept.model.train import train_narrow_vnet
    from vnet_accept.runners.backend_choice import cpu_model
    from vnet_accept.selftest.chain import held_out_error

    shipped = load_shipped()
    assert shipped is not None and shipped.problem(SELFTEST_RECIPE) is None, f"regenerate first: {REGENERATE}"
    result = train_narrow_vnet(SELFTEST_RECIPE)
    retrained = held_out_error(artifact_cache, save_checkpoint(tmp_path / "retrained.pth.tar", result.state_dict))
    checkpoint, _ = trained_checkpoint(artifact_cache)
    current = held_out_error(artifact_cache, checkpoint)
    recorded = shipped.meta["held_out"]["error_rate_pct"]
    summary = (f"retrained {retrained.measured:.4f} % vs shipped {current.measured:.4f} % (recorded "
               f"{recorded:.4f} % on {shipped.meta['cpu']}, torch {shipped.meta['torch']})")
    print(summary)
    assert retrained.passed, f"the retrained model fails the self-test: {retrained.first_line}"
    assert abs(retrained.measured - current.measured) <= SELFTEST_RETRAIN_BAND_PP, \
        f"{summary}: more than {SELFTEST_RETRAIN_BAND_PP} points apart; if the recipe is meant to change: {REGENERATE}"
    # the shipped weights score here what they scored when written (ONNX Runtime rounding flips only a few voxels)
    assert current.measured == pytest.approx(recorded, abs=0.01), summary
    same_setup = (shipped.meta["torch"], shipped.meta["threads"], shipped.meta["cpu"]) == \
        (torch.__version__, torch.get_num_threads(), cpu_model())
    if same_setup:
        stored = storable(result.state_dict)
        with np.load(shipped.path) as data:
            differ = [k for k in data.files if not np.array_equal(data[k], stored[k])]
        assert not differ, f"same torch, threads and CPU, yet {len(differ)} tensors differ (first {differ[0]})"
