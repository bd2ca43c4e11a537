"""Inference tests run on one thread: the numbers they compare do not depend on it, the CPU time does."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield
