"""Fast-SCNN, written from the paper: Poudel, Liwicki, Cipolla, "Fast-SCNN: Fast Semantic
Segmentation Network", BMVC 2019 (arXiv:1902.04502). 1.11M parameters for 19 Cityscapes classes.

Two branches share their first layers ("learning to downsample"), Table 1 of the paper:

    input -> Learning to downsample (1/8, 64 ch) ----------------------------+
                 |                                                           |
                 +-> Global feature extractor (bottlenecks to 1/32, PPM) -> Feature fusion (1/8)
                                                                             |
                                                      Classifier (2 DSConv + 1x1) -> upsample

| stage                | op         | t | c   | n | s |
|----------------------|------------|---|-----|---|---|
| learning to downsample | Conv2D   | - | 32  | 1 | 2 |
|                      | DSConv     | - | 48  | 1 | 2 |
|                      | DSConv     | - | 64  | 1 | 2 |
| global features      | bottleneck | 6 | 64  | 3 | 2 |
|                      | bottleneck | 6 | 96  | 3 | 2 |
|                      | bottleneck | 6 | 128 | 3 | 1 |
|                      | PPM        | - | 128 | - | - |
| feature fusion       | FFM        | - | 128 | - | - |
| classifier           | DSConv     | - | 128 | 2 | 1 |
|                      | Conv2D 1x1 | - | K   | 1 | 1 |

Every conv is followed by batch norm; ReLU follows all but the linear 1x1 projections (the end of
a bottleneck and of each fusion branch, before the sum). Not included: the two auxiliary training
heads the paper attaches with weight 0.4 (the network contract is one logits tensor).

Any input size works: pooling is adaptive (and ONNX-exportable at any size), the fusion upsamples the 1/32 features to the exact
size of the 1/8 ones, and the logits are resized to the input's height and width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rtseg.models.pooling import adaptive_avg_pool


def conv_bn_relu(
    cin: int,
    cout: int,
    kernel: int = 3,
    stride: int = 1,
    groups: int = 1,
    dilation: int = 1,
    relu: bool = True,
) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    layers = [
        nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DSConv(nn.Sequential):
    """Depthwise separable conv: 3x3 depthwise (carries the stride) then 1x1 pointwise, BN + ReLU after each."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(conv_bn_relu(cin, cin, 3, stride, groups=cin), conv_bn_relu(cin, cout, 1))


class Bottleneck(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand (t), 3x3 depthwise (stride), 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int = 6):
        super().__init__()
        hidden = cin * expansion
        self.block = nn.Sequential(
            conv_bn_relu(cin, hidden, 1),
            conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            conv_bn_relu(hidden, cout, 1, relu=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


def bottleneck_stage(cin: int, cout: int, n: int, stride: int, expansion: int) -> nn.Sequential:
    """n bottlenecks; the first one changes channels and stride."""
    return nn.Sequential(
        *[
            Bottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1, expansion)
            for i in range(n)
        ]
    )


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling: average-pool to 1x1, 2x2, 3x3, 6x6 bins, reduce, upsample, concat, fuse."""

    def __init__(self, channels: int, out_channels: int, bins=(1, 2, 3, 6)):
        super().__init__()
        reduced = channels // len(bins)
        self.bins = tuple(bins)
        self.reduce = nn.ModuleList([conv_bn_relu(channels, reduced, 1) for _ in bins])
        self.fuse = conv_bn_relu(channels + reduced * len(bins), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(
                reduce(adaptive_avg_pool(x, b)), size=size, mode="bilinear", align_corners=False
            )
            for b, reduce in zip(self.bins, self.reduce, strict=True)
        ]
        return self.fuse(torch.cat([x, *pooled], dim=1))


class FeatureFusion(nn.Module):
    """Adds the 1/8 detail features to the upsampled 1/32 context features (Table 2 of the paper)."""

    def __init__(self, high_channels: int, low_channels: int, out_channels: int):
        super().__init__()
        self.high = conv_bn_relu(high_channels, out_channels, 1, relu=False)
        self.low = nn.Sequential(
            conv_bn_relu(low_channels, low_channels, 3, groups=low_channels, dilation=4),
            conv_bn_relu(low_channels, out_channels, 1, relu=False),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        low = F.interpolate(low, size=high.shape[-2:], mode="bilinear", align_corners=False)
        return self.relu(self.high(high) + self.low(low))


class FastSCNN(nn.Module):
    def __init__(
        self, num_classes: int, in_channels: int = 3, expansion: int = 6, dropout: float = 0.1
    ):
        super().__init__()
        self.num_classes = num_classes
        self.learning_to_downsample = nn.Sequential(
            conv_bn_relu(in_channels, 32, 3, stride=2),
            DSConv(32, 48, stride=2),
            DSConv(48, 64, stride=2),
        )
        self.global_features = nn.Sequential(
            bottleneck_stage(64, 64, n=3, stride=2, expansion=expansion),
            bottleneck_stage(64, 96, n=3, stride=2, expansion=expansion),
            bottleneck_stage(96, 128, n=3, stride=1, expansion=expansion),
            PyramidPooling(128, 128),
        )
        self.fusion = FeatureFusion(high_channels=64, low_channels=128, out_channels=128)
        self.classifier = nn.Sequential(
            DSConv(128, 128),
            DSConv(128, 128),
            nn.Dropout(dropout),
            nn.Conv2d(128, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        high = self.learning_to_downsample(x)
        low = self.global_features(high)
        out = self.classifier(self.fusion(high, low))
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return torch.tanh(out) if self.num_classes == 1 else out
