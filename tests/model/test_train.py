"""The self-test's training recipe: validation, the class-weight schedule, tile sampling and BN calibration.
(The training run itself is judged end to end by the self-test: vnet_accept/checks/test_selftest_defects.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vnet_accept.data.tiles import TILE_SHAPE, VOLUME_SHAPE
from vnet_accept.model.train import TrainRecipe, _class_weights, _lr_factor, _TileSampler, recalibrate_bn
from vnet_accept.model.vnet import VNet, VNetBatchNorm3d


def test_recipe_refuses_impossible_settings():
    with pytest.raises(ValueError, match="running_steps"):
        TrainRecipe(steps=10, running_steps=11)
    with pytest.raises(ValueError, match=r"steps \(--steps\) and scans \(--scans\)"):
        TrainRecipe(steps=0)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainRecipe(learning_rate=0)
    assert TrainRecipe().to_dict()["bn_mode"] == "running"  # what the trained model is exported in


def test_lung_weight_falls_linearly_and_lr_warms_up_then_decays():
    r = TrainRecipe(steps=11, running_steps=3, lung_class_weight=5.0, final_lung_class_weight=1.0, warmup_steps=5)
    assert _class_weights(0, r).tolist() == [1.0, 5.0]
    assert _class_weights(5, r).tolist() == pytest.approx([1.0, 3.0])
    assert _class_weights(10, r).tolist() == [1.0, 1.0]
    factors = [_lr_factor(s, r) for s in range(r.steps)]
    assert factors[0] == pytest.approx(0.2) and max(factors) == factors[4] and factors[-1] < 0.05


def test_sampler_draws_only_tiles_with_lung_and_is_seeded():
    masks = np.zeros((1, *VOLUME_SHAPE), dtype=bool)
    masks[0, 10:20, 10:20, 10:20] = True  # lung in tile 0 only
    inputs = np.random.default_rng(0).standard_normal((1, *VOLUME_SHAPE), dtype=np.float32)
    sampler = _TileSampler(inputs, masks, TrainRecipe())
    assert len(sampler.tiles) == 1
    x, y = sampler.batch()
    assert x.shape == (1, 1, *TILE_SHAPE) and y.shape == (1, *TILE_SHAPE) and y.dtype == torch.int64
    assert int(y.sum()) == 1000
    with pytest.raises(RuntimeError, match="no lung"):
        _TileSampler(inputs, np.zeros_like(masks), TrainRecipe())


def test_recalibration_sets_running_stats_to_the_average_per_tile_statistics():
    torch.manual_seed(0)
    model = VNet(width=2, bn_mode="instance")
    tiles = [np.random.default_rng(k).normal(k, 1 + k, (32, 32, 32)).astype(np.float32) for k in range(3)]
    recalibrate_bn(model, tiles)
    first = model.in_tr.bn1
    with torch.no_grad():
        feats = [model.in_tr.conv1(torch.from_numpy(t)[None, None]) for t in tiles]
    means = torch.stack([f.mean(dim=(0, 2, 3, 4)) for f in feats])
    variances = torch.stack([f.var(dim=(0, 2, 3, 4), unbiased=True) for f in feats])
    torch.testing.assert_close(first.running_mean, means.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first.running_var, variances.mean(0), rtol=1e-4, atol=1e-5)
    assert not any(m.port_updates_running_stats for m in model.modules() if isinstance(m, VNetBatchNorm3d))
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, VNetBatchNorm3d))
