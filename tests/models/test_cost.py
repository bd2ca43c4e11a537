"""The FLOP split per module (experiments/network_profile) adds up to the total the project reports,
and counts a module's own matmuls (not only its leaf convolutions)."""

from __future__ import annotations

import torch
from torch import nn

from rtseg.models.cost import count_gflops, gflops_by_module


class Pooled(nn.Module):
    """A conv stage, then its own matmul outside any submodule (like SPPM's pooling matrices)."""

    def __init__(self):
        super().__init__()
        self.stage = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        y = self.stage(x)
        y = y @ torch.ones(y.shape[-1], y.shape[-1])  # 2 * 8 * 16 * 16 * 16 FLOPs of its own
        return self.head(y)


def test_the_split_adds_up_and_keeps_a_module_s_own_ops():
    net = Pooled()
    split = gflops_by_module(net, (16, 16))
    assert abs(sum(split.values()) - count_gflops(net, (16, 16))) < 1e-12
    assert set(split) == {"", "stage.0", "head"}
    assert abs(split[""] - 2 * 8 * 16 * 16 * 16 / 1e9) < 1e-12
    assert abs(split["stage.0"] - 2 * 3 * 9 * 8 * 16 * 16 / 1e9) < 1e-12
