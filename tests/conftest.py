"""Shared fixtures of the runner tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _not_an_xdist_worker_inside(monkeypatch):
    """Under ``pytest -n`` the pytest runs these tests start in-process (pytester, the gate) are plain sessions,
    not xdist workers; without this they inherit the worker's environment and pytest-benchmark (and the perf
    marker's self-enabling benchmark) would take them for workers."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)


@pytest.fixture
def one_thread():
    """Tests that check numbers or plumbing with many tiny CPU forwards run them on one PyTorch thread: on a busy
    2-core machine two OpenMP threads competing with another process made each forward of a width-4 16×32×32 VNet
    ~50× slower (0.87 s vs 0.017 s, measured). Results do not depend on the thread count beyond rounding."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
