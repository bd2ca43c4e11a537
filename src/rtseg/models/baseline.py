"""The seed article's network: three 3x3 same-padded convolutions, 3 -> 64 -> 64 -> K.

ReLU follows the first two. With ``num_classes=1`` it is the article's binary form, whose single
output channel goes through tanh (``rtseg.training.losses.SegLoss`` trains it with binary
cross-entropy on ``(t + 1) / 2``).
"""

from __future__ import annotations

import torch
from torch import nn


class ThreeConvNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, num_classes, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.conv3(x)
        return torch.tanh(x) if self.num_classes == 1 else x
