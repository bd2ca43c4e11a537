"""Test-time augmentation and the inference size: class probabilities averaged over horizontal flips
and input scales, for any function from a batch to logits (a network, an inference backend).

    TTA.parse("flip")            # the image and its mirror: 2 passes
    TTA.parse("ms")              # scales 0.75, 1, 1.25, 1.5 of the input: 4 passes
    TTA.parse("ms_flip")         # both: 8 passes
    TTA.parse({"scales": [1, 1.5], "flip": true})

Each pass's logits are resized back to the input's size (bilinear) and turned into probabilities
(softmax; a single tanh/logit channel: the sigmoid); their mean is returned as log-probabilities, so
the argmax and every metric downstream read it as logits. ``size`` runs the network at another input
size than the images have (``data.input_size`` in rtseg-eval): the scales are relative to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rtseg.errors import RtsegError

MS_SCALES = (0.75, 1.0, 1.25, 1.5)
NAMES = {"none": (False, (1.0,)), "flip": (True, (1.0,)), "ms": (False, MS_SCALES),
         "ms_flip": (True, MS_SCALES)}  # fmt: skip


@dataclass(frozen=True)
class TTA:
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)

    @classmethod
    def parse(cls, spec) -> TTA | None:
        """``none``/null -> None; a name (``flip``, ``ms``, ``ms_flip``) or ``{flip, scales}``."""
        if spec is None or spec is False or spec == "none":
            return None
        if isinstance(spec, str):
            if spec not in NAMES:
                raise RtsegError(
                    f"tta={spec}: expected one of {', '.join(NAMES)} or {{flip, scales}}"
                )
            flip, scales = NAMES[spec]
            return cls(flip, scales)
        if isinstance(spec, TTA):
            return spec
        try:
            spec = dict(spec)
        except (TypeError, ValueError):
            raise RtsegError(
                f"tta={spec}: expected a name or {{flip: bool, scales: [numbers]}}"
            ) from None
        unknown = sorted(str(k) for k in spec if k not in ("flip", "scales"))
        if unknown:  # tta={flipp: true} silently meant no TTA (issue 36)
            raise RtsegError(
                f"tta={spec}: unknown key {', '.join(unknown)}: the keys are flip (bool) and "
                f"scales (numbers), e.g. {{flip: true, scales: [0.75, 1.0, 1.25]}}, or a name "
                f"({', '.join(NAMES)})"
            )
        try:
            scales = tuple(float(s) for s in spec.get("scales") or (1.0,))
        except (TypeError, ValueError):
            raise RtsegError(
                f"tta={spec}: expected a name or {{flip: bool, scales: [numbers]}}"
            ) from None
        if not scales or any(not 0.1 <= s <= 4 for s in scales):
            raise RtsegError(f"tta.scales={list(scales)}: expected numbers in [0.1, 4]")
        return cls(bool(spec.get("flip", False)), scales)

    @property
    def passes(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    def describe(self) -> str:
        parts = []
        if self.scales != (1.0,):
            parts.append("scales " + "/".join(f"{s:g}" for s in self.scales))
        if self.flip:
            parts.append("flip")
        return " + ".join(parts) or "none"


def tta_logits(
    run: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tta: TTA | None,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Mean class probabilities (as log-probabilities) of ``run`` over ``tta``'s passes, at ``x``'s
    size; ``size``: the input size the scales are relative to (None: ``x``'s own)."""
    tta = tta or TTA()
    h, w = x.shape[-2:]
    base = size or (h, w)
    # in place where it can be: at 11x360x480 the allocations cost as much as the arithmetic;
    # mirrored passes add up mirrored and are flipped back once
    sums: dict[bool, torch.Tensor] = {}
    for scale in tta.scales:
        target = (max(1, round(base[0] * scale)), max(1, round(base[1] * scale)))
        xs = (
            x
            if target == (h, w)
            else F.interpolate(x, target, mode="bilinear", align_corners=False)
        )
        for flipped in (False, True) if tta.flip else (False,):
            out = run(xs.flip(-1) if flipped else xs).float()
            if out.shape[-2:] != (h, w):
                out = F.interpolate(out, (h, w), mode="bilinear", align_corners=False)
            p = torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, 1)
            # p is a new tensor (softmax/sigmoid allocate): the sums may grow in place
            sums[flipped] = sums[flipped].add_(p) if flipped in sums else p
    mean = sums.get(False)
    if True in sums:
        mean = sums[True].flip(-1) if mean is None else mean.add_(sums[True].flip(-1))
    mean.div_(tta.passes)
    if mean.shape[1] == 1:  # back to a logit: its sign is the class, as for the network's own
        return torch.logit(mean.clamp_(1e-6, 1 - 1e-6))
    return mean.clamp_min_(1e-12).log_()


class TestTimeAugmented(nn.Module):
    """A network whose forward is ``tta_logits`` of the wrapped one (rtseg-eval's ``tta=`` and
    ``data.input_size``): the same interface, the same state dict under ``net.``."""

    def __init__(self, net: nn.Module, tta: TTA | None = None, size=None):
        super().__init__()
        self.net, self.tta = net, tta
        self.size = tuple(int(v) for v in size) if size else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tta is None and (self.size is None or tuple(x.shape[-2:]) == self.size):
            return self.net(x)
        return tta_logits(self.net, x, self.tta, self.size)
