"""torchvision's mobile segmentation networks (LRASPP and DeepLabV3 on MobileNetV3-Large).

These are what a user would pick off the shelf instead of this project, so they sit in the zoo as
reference points. torchvision returns ``{"out": logits}``; the wrapper returns the plain logits
tensor (the network contract) at the input's height and width. Weights are never downloaded:
``weights`` and ``weights_backbone`` default to ``None`` and anything else must already be in
torch's hub cache.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import segmentation

ARCHS = {
    "lraspp_mobilenet_v3_large": segmentation.lraspp_mobilenet_v3_large,
    "deeplabv3_mobilenet_v3_large": segmentation.deeplabv3_mobilenet_v3_large,
}


class TorchvisionSeg(nn.Module):
    """A torchvision segmentation model whose forward returns logits (B, K, H, W), not a dict."""

    def __init__(self, model: nn.Module, num_classes: int):
        super().__init__()
        self.model = model
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)["out"]
        # torchvision already upsamples to the input size; keep the contract explicit anyway
        if out.shape[-2:] != x.shape[-2:]:
            out = nn.functional.interpolate(
                out, size=x.shape[-2:], mode="bilinear", align_corners=False
            )
        return torch.tanh(out) if self.num_classes == 1 else out


def create(
    arch: str, num_classes: int, weights: str | None = None, weights_backbone: str | None = None
) -> TorchvisionSeg:
    """Build torchvision ``arch`` with ``num_classes`` outputs; no auxiliary head, no download by default."""
    if arch not in ARCHS:
        raise ValueError(
            f"unknown torchvision segmentation arch {arch!r}: expected one of {sorted(ARCHS)}"
        )
    model = ARCHS[arch](
        weights=weights, weights_backbone=weights_backbone, num_classes=num_classes, aux_loss=False
    )
    return TorchvisionSeg(model, num_classes)
