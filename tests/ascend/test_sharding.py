"""Sharing tiles over device ids: contiguous whole batches, as even as possible, order kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnet_accept.ascend.inference import check_device_ids, shard


def test_example():
    assert shard(list(range(10)), [0, 1], batch_size=4) == {0: [0, 1, 2, 3, 4, 5, 6, 7], 1: [8, 9]}


def test_the_port_split_over_a_310_card():
    shards = shard(list(range(1072)), [0, 1, 2, 3], batch_size=16)  # 67 batches over 4 chips
    assert [len(v) for v in shards.values()] == [17 * 16, 17 * 16, 17 * 16, 1072 - 51 * 16]


def test_more_devices_than_batches():
    assert shard(["a", "b"], [3, 1, 2], batch_size=1) == {3: ["a"], 1: ["b"]}


@pytest.mark.parametrize("ids, message", [([], "at least one"), ([0, 0], "repeat"), ([-1], ">= 0")])
def test_device_id_validation(ids, message):
    with pytest.raises(ValueError, match=message):
        check_device_ids(ids)


def test_batch_size_validation():
    with pytest.raises(ValueError, match="batch size"):
        shard([1], [0], batch_size=0)


@settings(max_examples=60)
@given(n=st.integers(0, 300), devices=st.lists(st.integers(0, 15), min_size=1, max_size=8, unique=True),
       batch_size=st.integers(1, 32))
def test_shards_are_contiguous_whole_batches(n, devices, batch_size):
    items = list(range(n))
    shards = shard(items, devices, batch_size)
    assert [i for chunk in shards.values() for i in chunk] == items  # nothing lost, order kept
    assert list(shards) == [d for d in devices if d in shards]
    sizes = [len(chunk) for chunk in shards.values()]
    assert all(size % batch_size == 0 for size in sizes[:-1])  # only the last shard may end part-way
    batches = [-(-size // batch_size) for size in sizes]
    assert not batches or max(batches) - min(batches) <= 1
