"""Knowledge distillation: a frozen teacher network whose logits the student is pulled towards.

The teacher is any trained checkpoint of the same classes (``module.distill.teacher=PATH``, a
``.ckpt`` or a shipped name). It is held outside the module's state, so checkpoints and exported
models carry the student alone; its input is re-normalised when its pretraining statistics differ
from the student's. The loss itself is ``rtseg.training.losses.distillation_loss``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rtseg.checkpoints.reading import load_network, weights_identity
from rtseg.errors import CheckpointError
from rtseg.training.losses import distillation_loss


class Distillation(nn.Module):
    def __init__(
        self,
        teacher: str,
        kind: str = "cwd",
        weight: float = 1.0,
        temperature: float = 1.0,
    ):
        super().__init__()
        if kind not in ("logit", "cwd"):
            raise ValueError(f"module.distill.kind={kind!r}: expected logit or cwd")
        net, meta = load_network(teacher)
        # a list, not an attribute: the teacher is no submodule, so it is neither trained nor saved
        self._teacher = [net.eval().requires_grad_(False)]
        self.teacher_meta = meta
        self.kind, self.weight, self.temperature = kind, float(weight), float(temperature)
        self._renorm: tuple[torch.Tensor, torch.Tensor] | None = None
        who = weights_identity(teacher)
        self.record = {
            "teacher": who["source"],
            "teacher_sha256": who["sha256"],
            "teacher_val_miou": meta.get("val_miou"),
            "kind": kind,
            "weight": self.weight,
            "temperature": self.temperature,
        }

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def bind(self, num_classes: int, mean: Sequence[float], std: Sequence[float]) -> None:
        """Check the teacher against the student and map the student's input to the teacher's."""
        classes = int(self.teacher_meta["num_classes"])
        if classes != num_classes:
            raise CheckpointError(
                f"module.distill.teacher={self.record['teacher']} predicts {classes} classes, "
                f"the student {num_classes}: distil from a teacher trained on the same data"
            )
        t_mean, t_std = self.teacher_meta["mean"], self.teacher_meta["std"]
        if list(t_mean) != list(mean) or list(t_std) != list(std):
            # x_teacher = (x * std + mean - t_mean) / t_std = x * a + b
            a = torch.tensor(std) / torch.tensor(t_std)
            b = (torch.tensor(mean) - torch.tensor(t_mean)) / torch.tensor(t_std)
            self._renorm = (a.view(1, 3, 1, 1), b.view(1, 3, 1, 1))

    def match(self, like: nn.Module) -> None:
        """Follow the student's device and memory format (channels_last trains twice as fast here)."""
        conv = next(p for p in like.parameters() if p.dim() == 4)
        channels_last = (
            conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
        )
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.teacher.to(device=conv.device, memory_format=fmt)

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        if self._renorm is not None:
            a, b = (t.to(images.device, images.dtype) for t in self._renorm)
            images = images * a + b
        self.teacher.eval()
        return self.teacher(images)

    def forward(
        self, student: torch.Tensor, images: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        teacher = self.teacher_logits(images)
        return self.weight * distillation_loss(student, teacher, self.kind, self.temperature, valid)
