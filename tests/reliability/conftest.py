"""The reliability sweep: every bad-input or fault case of issue 19, its bad input built in tmp_path.

Inference runs on one thread here: the cases compare outputs, not speed.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield
