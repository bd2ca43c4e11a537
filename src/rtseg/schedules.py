"""Per-step learning-rate schedules that need the run's total step count (filled in by the module)."""

from __future__ import annotations

import math
import time

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def _warmup(step: int, warmup_steps: int) -> float:
    return (step + 1) / warmup_steps if step < warmup_steps else 1.0


def poly(
    optimizer: Optimizer,
    total_steps: int,
    power: float = 0.9,
    warmup_steps: int = 0,
    time_budget_s: float | None = None,
) -> LambdaLR:
    """The segmentation standard: lr * (1 - t/T)^power after a linear warm-up.

    With ``time_budget_s`` the progress t/T is the larger of the step fraction and the fraction of
    the wall-clock budget spent ("budgeted training"): on a CPU whose speed is not known in advance
    the decay still completes when the budget runs out, instead of being cut off at a high lr.
    """
    start = time.monotonic()

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if time_budget_s:
            progress = max(progress, (time.monotonic() - start) / time_budget_s)
        return max(0.0, 1 - progress) ** power

    return LambdaLR(optimizer, factor)


def cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_factor: float = 0.0
) -> LambdaLR:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))

    return LambdaLR(optimizer, factor)


def constant(optimizer: Optimizer, total_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: 1.0)
