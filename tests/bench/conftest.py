"""Shared fixtures of the benchmark tests: a tiny network, and a real (one-epoch) checkpoint."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield
