"""Per-step learning-rate schedules that need the run's total step count (filled in by the module).

``poly`` is ours because torch has no wall-clock budget; ``cosine`` is torch's schedulers behind
the ``(optimizer, total_steps)`` signature that ``conf/module`` configs instantiate.
"""

from __future__ import annotations

import os
import time
import uuid

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    SequentialLR,
)


def _warmup(step: int, warmup_steps: int) -> float:
    return (step + 1) / warmup_steps if step < warmup_steps else 1.0


class _PolyFactor:
    """The poly factor as a callable object, so that LambdaLR saves its state in checkpoints.

    The wall-clock budget spent so far (``spent_s``) is part of that state: a resumed run goes on
    from where the interrupted one was on the budget instead of starting the budget again.
    """

    def __init__(self, total_steps, power, warmup_steps, time_budget_s):
        self.total_steps, self.power, self.warmup_steps = total_steps, power, warmup_steps
        self.time_budget_s = time_budget_s
        self.spent_s = 0.0
        self._base_s = 0.0
        self._t0 = time.monotonic()
        self._process = _PROCESS

    def spent(self) -> float:
        if self._process != _PROCESS:  # state loaded from a checkpoint of another process
            self._base_s, self._t0, self._process = self.spent_s, time.monotonic(), _PROCESS
        self.spent_s = self._base_s + time.monotonic() - self._t0
        return self.spent_s

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps)
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        if self.time_budget_s:
            progress = max(progress, self.spent() / self.time_budget_s)
        return max(0.0, 1 - progress) ** self.power


_PROCESS = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


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
    The budget spent is saved with the scheduler, so it survives a resume.
    """
    return LambdaLR(optimizer, _PolyFactor(total_steps, power, warmup_steps, time_budget_s))


def cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_factor: float = 0.0
) -> LRScheduler:
    """Linear warm-up, then cosine decay to ``min_factor`` * lr at ``total_steps``: torch's own
    schedulers, taking the ``total_steps`` the module passes. (A constant lr: ``scheduler: null``.)"""
    base_lr = optimizer.param_groups[0]["lr"]
    decay = CosineAnnealingLR(
        optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=min_factor * base_lr
    )
    if warmup_steps <= 0:
        return decay
    warmup = LinearLR(optimizer, 1 / warmup_steps, 1.0, total_iters=max(1, warmup_steps - 1))
    return SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])
