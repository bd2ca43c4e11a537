"""Real-time decoders on the offline-pretrained EfficientNet-Lite encoders, written from their papers.

Both heads read a few encoder stages and predict at a coarse stride, then upsample the logits
bilinearly: on a CPU the decoder of a U-Net (full-resolution convolutions) costs more than the
encoder, while these heads cost a fraction of it.

- ``lraspp``: the Lite R-ASPP head of Howard et al., "Searching for MobileNetV3", ICCV 2019
  (arXiv:1905.02244), Sec. 6.3 / Fig. 10. The deepest features go through a 1x1 conv-BN-ReLU
  (128 channels) gated by a sigmoid of their global average (a squeeze-excitation-like branch;
  the paper's large-kernel pooling equals a global pool at these sizes), are upsampled to the
  low-level (1/8) features and projected to classes; a 1x1 projection of the low-level
  features is added. Logits at 1/8.
- ``ppliteseg``: the decoder of Peng et al., "PP-LiteSeg: A Superior Real-Time Semantic
  Segmentation Model", 2022 (arXiv:2204.02681), Sec. 3: SPPM (Simple Pyramid Pooling Module:
  bins 1, 2, 4, each a 1x1 conv-BN-ReLU, upsampled and *summed*, then a 3x3 conv-BN-ReLU), a
  Flexible and Lightweight Decoder whose channels shrink towards high resolution, and UAFM
  (Unified Attention Fusion Module, spatial-attention form): ``alpha = sigmoid(conv([mean_c(up),
  max_c(up), mean_c(low), max_c(low)]))``, ``out = up * alpha + low * (1 - alpha)``. The paper
  fuses stages 1/8 and 1/16 under the 1/32 SPPM and predicts at 1/8 (``out_stride=8``);
  ``out_stride=4`` adds one more UAFM with the 1/4 stage, which matters for thin classes
  (poles, signs) at CamVid's 360x480.

Deep supervision (``aux_heads=true``, PP-LiteSeg's training recipe): a small segmentation head on
each coarser decoder stage (the SPPM output and every UAFM but the last). In training mode the
network then returns ``(logits, [aux logits...])``, all at the input size; in eval mode, and so in
every exported graph, the heads are not run and the output is the logits alone.

Any input size works: the encoder is padded to a multiple of 32 by ``PadToMultiple`` and every
upsampling targets the exact size of the feature it is fused with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rtseg.errors import RtsegError
from rtseg.models.padding import PadToMultiple
from rtseg.models.pooling import adaptive_avg_pool
from rtseg.models.pretrained import NORMALIZATION, OFFLINE_WEIGHTS, load_ordered, timm_name

# EfficientNet-Lite feature strides the heads may read: timm's out_indices 1..4 = 1/4 .. 1/32
STRIDE_INDEX = {4: 1, 8: 2, 16: 3, 32: 4}
ENCODERS = {f"efficientnet_lite{n}": f"efficientnet-lite{n}" for n in (0, 1, 2)}


def training_only(key: str) -> bool:
    """A state-dict key of a deep-supervision head (``aux``, built with ``aux_heads=true``): used in
    training only, left out of shipped weights (tools/ship_model.py) and optional for a warm start."""
    return key.startswith("aux.") or ".aux." in key


def conv_bn_relu(cin: int, cout: int, k: int = 3, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class LiteEncoder(nn.Module):
    """timm's EfficientNet-Lite as a feature extractor at the requested strides.

    ``weights`` is None (random init) or an offline name ``efficientnet-liteN``; hub names are
    refused here because nothing may download at run time.
    """

    def __init__(self, name: str, strides: Sequence[int], weights: str | None):
        super().__init__()
        import timm

        if name not in ENCODERS:
            raise RtsegError(f"encoder_name={name!r}: expected one of {sorted(ENCODERS)}")
        if weights is not None and weights not in OFFLINE_WEIGHTS:
            raise RtsegError(
                f"encoder_weights={weights!r}: expected null or one of {', '.join(OFFLINE_WEIGHTS)}"
            )
        if weights is not None and timm_name(weights) != name:
            raise RtsegError(
                f"encoder_weights={weights} are for {timm_name(weights)}, not encoder_name={name}"
            )
        bad = [s for s in strides if s not in STRIDE_INDEX]
        if bad:
            raise RtsegError(f"encoder strides {bad}: expected some of {sorted(STRIDE_INDEX)}")
        self.strides = tuple(strides)
        self.model = timm.create_model(
            name,
            pretrained=False,
            features_only=True,
            out_indices=[STRIDE_INDEX[s] for s in strides],
        )
        if weights is not None:
            load_ordered(self.model, weights)
        self.channels = tuple(self.model.feature_info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x)


class LRASPPHead(nn.Module):
    """Lite R-ASPP: gated 1x1 on the deepest features + a 1x1 skip from the 1/8 features."""

    def __init__(self, low_channels: int, high_channels: int, num_classes: int, inter: int = 128):
        super().__init__()
        self.cbr = conv_bn_relu(high_channels, inter, k=1)
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(high_channels, inter, 1, bias=False), nn.Sigmoid()
        )
        self.high_classifier = nn.Conv2d(inter, num_classes, 1)
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.cbr(high) * self.scale(high)
        return self.low_classifier(low) + self.high_classifier(_up(x, low))


class SPPM(nn.Module):
    """Simple Pyramid Pooling Module: pooled context at bins 1, 2, 4, summed (not concatenated)."""

    def __init__(self, cin: int, inter: int, cout: int, bins: Sequence[int] = (1, 2, 4)):
        super().__init__()
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(conv_bn_relu(cin, inter, k=1) for _ in self.bins)
        self.out = conv_bn_relu(inter, cout, k=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for bins, stage in zip(self.bins, self.stages, strict=True):
            # pooling as matrix products: exports to ONNX at sizes the bins do not divide
            y = _up(stage(adaptive_avg_pool(x, bins)), x)
            total = y if total is None else total + y
        return self.out(total)


class UAFM(nn.Module):
    """Unified Attention Fusion Module, spatial attention: a per-pixel blend of up and low."""

    def __init__(self, low_channels: int, high_channels: int, cout: int):
        super().__init__()
        self.low = conv_bn_relu(low_channels, high_channels, k=3)
        self.attention = nn.Sequential(conv_bn_relu(4, 2, k=3), conv_bn_relu(2, 1, k=3, relu=False))
        self.out = conv_bn_relu(high_channels, cout, k=3)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        low = self.low(low)
        up = _up(high, low)
        stats = torch.cat(
            [
                up.mean(1, keepdim=True),
                up.amax(1, keepdim=True),
                low.mean(1, keepdim=True),
                low.amax(1, keepdim=True),
            ],
            dim=1,
        )
        alpha = torch.sigmoid(self.attention(stats))
        return self.out(up * alpha + low * (1 - alpha))


def seg_head(cin: int, mid: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, mid, k=3), nn.Conv2d(mid, num_classes, 1))


class PPLiteSegHead(nn.Module):
    """SPPM on the deepest stage, then UAFMs towards high resolution, then the segmentation head."""

    def __init__(
        self,
        channels: Sequence[int],
        num_classes: int,
        decoder_channels: Sequence[int],
        sppm_inter: int = 128,
        head_channels: int = 64,
        aux_heads: bool = False,
    ):
        super().__init__()
        # channels / decoder_channels are ordered high resolution first, like the encoder's output
        if len(decoder_channels) != len(channels):
            raise RtsegError(
                f"decoder_channels={list(decoder_channels)}: expected {len(channels)} values, "
                f"one per encoder stage used"
            )
        self.sppm = SPPM(channels[-1], sppm_inter, decoder_channels[-1])
        self.fuse = nn.ModuleList(
            UAFM(channels[i], decoder_channels[i + 1], decoder_channels[i])
            for i in reversed(range(len(channels) - 1))
        )
        self.head = seg_head(decoder_channels[0], head_channels, num_classes)
        # deep supervision: one head per coarser stage output, deepest first (training only)
        self.aux = (
            nn.ModuleList(
                seg_head(c, head_channels, num_classes) for c in reversed(decoder_channels[1:])
            )
            if aux_heads
            else None
        )

    def forward(self, features: Sequence[torch.Tensor]):
        x = self.sppm(features[-1])
        stages = [x]
        for fuse, low in zip(self.fuse, reversed(features[:-1]), strict=True):
            x = fuse(low, x)
            stages.append(x)
        logits = self.head(x)
        if self.aux is None or not self.training:
            return logits
        return logits, [head(y) for head, y in zip(self.aux, stages[:-1], strict=True)]


class LiteSegNet(nn.Module):
    """Encoder + head + bilinear upsampling of the logits to the input size."""

    def __init__(self, encoder: LiteEncoder, head: nn.Module, num_classes: int, kind: str):
        super().__init__()
        self.encoder, self.head, self.num_classes, self.kind = encoder, head, num_classes, kind

    def head_logits(self, x: torch.Tensor):
        """The head's output at its own stride, before the upsampling: logits, or (logits, aux
        logits) when training with deep supervision."""
        feats = self.encoder(x)
        return self.head(feats[0], feats[-1]) if self.kind == "lraspp" else self.head(feats)

    def forward(self, x: torch.Tensor):
        out = self.head_logits(x)
        if isinstance(out, tuple):  # training with deep supervision: (logits, aux logits)
            return self._finish(out[0], x), [self._finish(a, x) for a in out[1]]
        return self._finish(out, x)

    def _finish(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.tanh(logits) if self.num_classes == 1 else logits


def create(
    head: str,
    num_classes: int,
    encoder_name: str = "efficientnet_lite0",
    encoder_weights: str | None = "efficientnet-lite0",
    out_stride: int = 8,
    decoder_channels: Sequence[int] | None = None,
    inter_channels: int = 128,
    head_channels: int = 64,
    aux_heads: bool = False,
) -> nn.Module:
    """Build ``head`` (``lraspp`` or ``ppliteseg``) on an EfficientNet-Lite encoder, any input size."""
    if head == "lraspp":
        if aux_heads:
            raise RtsegError("aux_heads=true: deep supervision is built for head=ppliteseg only")
        if out_stride != 8:
            raise RtsegError(f"lraspp predicts at 1/8 (out_stride=8), got out_stride={out_stride}")
        encoder = LiteEncoder(encoder_name, (8, 32), encoder_weights)
        net_head: nn.Module = LRASPPHead(*encoder.channels, num_classes, inter=inter_channels)
    elif head == "ppliteseg":
        if out_stride not in (4, 8):
            raise RtsegError(f"ppliteseg out_stride={out_stride}: expected 4 or 8")
        strides = (4, 8, 16, 32) if out_stride == 4 else (8, 16, 32)
        encoder = LiteEncoder(encoder_name, strides, encoder_weights)
        # PP-LiteSeg-T's decoder widths (32, 64, 128 at 1/8, 1/16, 1/32), 32 more at 1/4
        default = (32, 32, 64, 128) if out_stride == 4 else (32, 64, 128)
        net_head = PPLiteSegHead(
            encoder.channels,
            num_classes,
            tuple(decoder_channels or default),
            sppm_inter=inter_channels,
            head_channels=head_channels,
            aux_heads=aux_heads,
        )
    else:
        raise RtsegError(f"head={head!r}: expected lraspp or ppliteseg")
    net = PadToMultiple(LiteSegNet(encoder, net_head, num_classes, head), multiple=32)
    net.encoder_name = encoder_name
    if encoder_weights is not None:
        net.input_normalization = NORMALIZATION
    return net
