"""Run a stride-constrained network on any input size: pad to a multiple, crop the logits back.

Most encoder-decoders want H and W divisible by 32; CamVid is 360x480. Padding happens inside the
model, on normalised input, and the logits are cropped to the input size, so padded pixels are
never scored and every caller (training, eval, export, realtime) sees the same contract.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PadToMultiple(nn.Module):
    def __init__(
        self, net: nn.Module, multiple: int = 32, min_size: int = 0, mode: str = "replicate"
    ):
        super().__init__()
        self.net, self.multiple, self.min_size, self.mode = net, multiple, min_size, mode

    def padded_size(self, h: int, w: int) -> tuple[int, int]:
        m = self.multiple
        # (h + m - 1) // m, not -(-h // m): ONNX export turns the latter into a truncating division
        return max((h + m - 1) // m * m, self.min_size), max((w + m - 1) // m * m, self.min_size)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """The input padded (bottom and right) to ``padded_size``; itself when it fits already."""
        h, w = x.shape[-2:]
        ph, pw = self.padded_size(h, w)
        if (ph, pw) == (h, w):
            return x
        return F.pad(x, (0, pw - w, 0, ph - h), mode=self.mode)

    def forward(self, x: torch.Tensor):
        h, w = x.shape[-2:]
        if self.padded_size(h, w) == (h, w):
            return self.net(x)
        out = self.net(self.pad(x))
        if isinstance(out, tuple):  # training with deep supervision: (logits, aux logits)
            return out[0][..., :h, :w], [a[..., :h, :w] for a in out[1]]
        return out[..., :h, :w]
