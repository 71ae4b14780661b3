"""Checkpoint layouts (SPEC §2.2) load strictly; everything else is refused with a precise message."""

from __future__ import annotations

import io
from collections import OrderedDict

import pytest
import torch

from vnet_accept.errors import CheckpointError
from vnet_accept.model.checkpoint import (
    LAYOUTS,
    checkpoint_object,
    load_checkpoint,
    random_state_dict,
    save_checkpoint,
    write_random_checkpoint,
)
from vnet_accept.model.vnet import VNet

WIDTH = 4  # narrow weights keep these tests fast; the loader reads the width from the tensors


@pytest.fixture(scope="module")
def state():
    return random_state_dict(seed=3, width=WIDTH, calibrate=False)


def _save(path, obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_loads_to_the_same_weights(layout, state, tmp_path):
    path = save_checkpoint(tmp_path / f"{layout}.pth.tar", state, layout=layout)
    ckpt = load_checkpoint(path)
    assert ckpt.width == WIDTH and not ckpt.elu
    assert list(ckpt.state_dict) == list(VNet(width=WIDTH).state_dict())
    for key, value in state.items():
        if layout == "legacy" and key.endswith("num_batches_tracked"):
            assert ckpt.state_dict[key].item() == 0  # filled in for checkpoints that predate the counters
        else:
            assert torch.equal(ckpt.state_dict[key], value), key
    expected_layout = {"upstream": "upstream", "port": "port", "bare": "bare", "legacy": "upstream+legacy"}
    assert ckpt.layout == expected_layout[layout]
    assert len(ckpt.sha256) == 64
    model = ckpt.build_model("running")
    assert not model.training


def test_metadata_of_wrapped_layouts_is_kept(state, tmp_path):
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "u.pth.tar", state, layout="upstream", epoch=7))
    assert ckpt.meta == {"epoch": 7, "best_prec1": 0.355}
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "p.pth.tar", state, layout="port", epoch=9))
    assert ckpt.meta == {"epoch": 9, "error": 0.5646}


def test_elu_checkpoint_is_recognised(tmp_path):
    path = save_checkpoint(tmp_path / "elu.pth", random_state_dict(width=WIDTH, elu=True, calibrate=False), "bare")
    assert load_checkpoint(path).elu


def test_half_stripped_prefix_is_refused(state, tmp_path):
    obj = checkpoint_object(state, "upstream")
    keys = list(obj["state_dict"])
    obj["state_dict"] = OrderedDict((k.removeprefix("module.") if i % 3 == 0 else k, v)
                                    for i, (k, v) in enumerate(obj["state_dict"].items()))
    with pytest.raises(CheckpointError, match="mixes key styles") as info:
        load_checkpoint(_save(tmp_path / "half.pth.tar", obj))
    assert keys[0].removeprefix("module.") in str(info.value)  # names offending keys


def test_missing_unexpected_and_misshaped_keys_are_named(state, tmp_path):
    broken = OrderedDict(state)
    del broken["down_tr64.ops.1.conv1.weight"]
    broken["extra.head.weight"] = torch.zeros(3)
    broken["up_tr32.bn1.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(_save(tmp_path / "broken.pth", broken))
    message = str(info.value)
    assert "1 missing (down_tr64.ops.1.conv1.weight)" in message
    assert "1 unexpected (extra.head.weight)" in message
    assert "mis-shaped (up_tr32.bn1.bias (5,) != (4,))" in message


def test_partial_num_batches_tracked_is_not_silently_filled(state, tmp_path):
    broken = OrderedDict(state)
    del broken["in_tr.bn1.num_batches_tracked"]  # one counter missing is corruption, not an old checkpoint
    with pytest.raises(CheckpointError, match="missing \\(in_tr.bn1.num_batches_tracked\\)"):
        load_checkpoint(_save(tmp_path / "partial.pth", broken))


def test_truncated_file_is_refused(state, tmp_path):
    path = save_checkpoint(tmp_path / "full.pth.tar", state)
    cut = tmp_path / "cut.pth.tar"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match="cut.pth.tar cannot be read by torch.load.*truncated"):
        load_checkpoint(cut)


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"not a checkpoint at all", "cannot be read by torch.load"),
])
def test_garbage_files_are_refused(content, message, tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_missing_file_names_the_path_and_the_remedy(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist.*vnet-accept checkpoint random"):
        load_checkpoint(tmp_path / "nope.pth.tar")


@pytest.mark.parametrize("obj, message", [
    ([torch.zeros(1)], "holds a list"),
    ({"state_dict": {}}, "empty"),
    ({"state_dict": {"in_tr.conv1.weight": "text"}}, "not tensors: in_tr.conv1.weight"),
    ({"conv.weight": torch.zeros(2, 2)}, "not a VNet checkpoint"),
])
def test_non_vnet_objects_are_refused(obj, message, tmp_path):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_save(tmp_path / "x.pth", obj))


def test_seeded_weights_are_deterministic_and_seed_dependent():
    a = random_state_dict(seed=1, width=WIDTH)
    b = random_state_dict(seed=1, width=WIDTH)
    c = random_state_dict(seed=2, width=WIDTH, calibrate=False)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["in_tr.conv1.weight"], c["in_tr.conv1.weight"])


def test_seeded_weights_have_distinct_bn_tensors():
    """Identical BN initialisers would be de-duplicated by the exporter and shared (see onnx_export)."""
    state = random_state_dict(seed=0, width=WIDTH)
    mean, var = state["down_tr32.bn1.running_mean"], state["down_tr32.bn1.running_var"]
    assert not torch.equal(state["down_tr32.bn1.bias"], mean)
    assert not torch.equal(state["down_tr32.bn1.weight"], var)
    assert (var > 0).all()


def test_written_checkpoints_are_byte_identical(tmp_path):
    a = write_random_checkpoint(tmp_path / "a.pth.tar", seed=5, width=2)
    b = write_random_checkpoint(tmp_path / "b.pth.tar", seed=5, width=2)
    assert a.read_bytes() == b.read_bytes()
