"""Issue 12: a checkpoint with NaN or Inf weights is refused, naming the tensors (it would export and "run")."""

from __future__ import annotations

import pytest

from vnet_accept.errors import CheckpointError
from vnet_accept.model.checkpoint import load_checkpoint, random_state_dict, save_checkpoint


@pytest.mark.parametrize(("key", "value"), [("down_tr32.ops.0.conv1.weight", float("nan")),
                                            ("out_tr.bn1.running_mean", float("inf")),
                                            ("in_tr.relu1.weight", float("-inf"))])
@pytest.mark.parametrize("layout", ["upstream", "bare"])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, key, value, layout):
    state = random_state_dict(width=2, calibrate=False)
    state[key].view(-1)[0] = value
    path = save_checkpoint(tmp_path / "w.pth.tar", state, layout=layout)
    with pytest.raises(CheckpointError, match=rf"{path}: NaN/Inf values in 1 tensor: {key} \(1 of [\d,]+ values\)"):
        load_checkpoint(path)


def test_finite_weights_and_integer_counters_load(tmp_path):
    path = save_checkpoint(tmp_path / "w.pth.tar", random_state_dict(width=2, calibrate=False))
    assert load_checkpoint(path).width == 2


def test_a_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)
