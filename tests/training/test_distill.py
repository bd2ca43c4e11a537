"""Distillation: a teacher checkpoint pulls the student, and only the student is saved."""

from __future__ import annotations

import json

import pytest
import torch

from rtseg.errors import CheckpointError
from rtseg.training.distill import Distillation
from rtseg.training.train import train

from ..conftest import FAST_TRAIN, TINY


def test_training_with_a_teacher_logs_the_term_and_saves_only_the_student(
    compose_cfg, tiny_ckpt, tmp_path
):
    run = tmp_path / "run"
    cfg = compose_cfg(
        "train",
        [
            *TINY, *FAST_TRAIN, "model.width=8", "trainer.max_epochs=1", "test=false",
            f"+module.distill={{_target_:rtseg.training.distill.Distillation,teacher:{tiny_ckpt},kind:cwd,weight:2.0,temperature:4.0}}",
        ],
        run_dir=run,
    )  # fmt: skip
    train(cfg)
    record = json.loads((run / "run.json").read_text())
    assert record["extra"]["distill"]["teacher"] == str(tiny_ckpt.resolve())
    assert (
        record["extra"]["distill"]["kind"] == "cwd" and record["extra"]["distill"]["teacher_sha256"]
    )
    assert "train/loss_kd" in (run / "metrics.csv").read_text().splitlines()[0]
    saved = torch.load(next((run / "checkpoints").glob("last.ckpt")), weights_only=True)
    assert not [k for k in saved["state_dict"] if "teacher" in k]
    assert "distill" not in saved["hyper_parameters"]


def test_teacher_of_other_classes_is_refused(tiny_ckpt):
    kd = Distillation(str(tiny_ckpt))
    with pytest.raises(CheckpointError, match="predicts 7 classes, the student 3"):
        kd.bind(3, (0.5,) * 3, (0.5,) * 3)


def test_teacher_input_follows_its_own_normalisation(tiny_ckpt):
    kd = Distillation(str(tiny_ckpt))
    t_mean, t_std = kd.teacher_meta["mean"], kd.teacher_meta["std"]
    kd.bind(7, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    raw = torch.rand(1, 3, 8, 8)
    student_x = (raw - 0.5) / 0.5
    teacher_x = (raw - torch.tensor(t_mean).view(1, 3, 1, 1)) / torch.tensor(t_std).view(1, 3, 1, 1)
    assert torch.allclose(kd.teacher_logits(student_x), kd.teacher(teacher_x), atol=1e-4)
