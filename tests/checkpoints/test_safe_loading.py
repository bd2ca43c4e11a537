"""A crafted checkpoint whose unpickling would create a file is refused by every entrypoint, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ..conftest import FAST_TRAIN, TINY

BIN = Path(sys.executable).parent


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # what an attacker's pickle does: call a global at load time
        return (open, (str(self.marker), "w"))


@pytest.fixture
def crafted(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"meta": Payload(marker)}}, path)
    assert not marker.exists()
    return path, marker


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("rtseg-eval", ["split=val"]),
        ("rtseg-bench", ["input_size=[32,32]", "backends=[eager]"]),
        ("rtseg-export", ["format=onnx"]),
        ("rtseg-realtime", ["source=synthetic", "sink=none", "max_frames=2"]),
    ],
)
def test_crafted_checkpoint_is_refused(command, extra, crafted, tmp_path):
    path, marker = crafted
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [str(BIN / command), f"checkpoint={path}", f"hydra.run.dir={tmp_path / 'out'}", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert not marker.exists(), "the checkpoint's code ran"
    errors = [ln for ln in proc.stderr.splitlines() if "refused checkpoint" in ln]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_resume_refuses_it_too(crafted, compose_cfg):
    from rtseg.errors import CheckpointError
    from rtseg.training.train import train

    path, marker = crafted
    with pytest.raises(CheckpointError, match="refused checkpoint"):
        train(compose_cfg(overrides=[*TINY, *FAST_TRAIN, f"ckpt_path={path}"]))
    assert not marker.exists()
