"""The reliability sweep: every bad-input or fault case of issue 19, its bad input built in tmp_path.

Inference runs on one thread here: the cases compare outputs, not speed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from rtseg.utils.config import compose_config


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


def write_video(path, frames: int = 12, size=(48, 64), fps: float = 25.0):
    """A small mp4 (mp4v through OpenCV) of random frames: a source to protect or to pace."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture
def realtime_cfg(tmp_path, tiny_ckpt):
    """compose(realtime, overrides): the tiny checkpoint on eager, one thread, runs under tmp_path."""

    def make(*overrides):
        return compose_config(
            "realtime",
            [
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.log_dir={tmp_path / 'logs'}",
                f"checkpoint={tiny_ckpt}",
                "backend=eager",
                "threads=1",
                "progress.enabled=false",
                *overrides,
            ],
        )

    return make


def run_cli(module: str, *args, cwd=None, timeout=180, env=None) -> subprocess.CompletedProcess:
    """An entrypoint as a user runs it (``python -c 'from MODULE import main; main()' ARGS``)."""
    return subprocess.run(
        [sys.executable, "-c", f"from {module} import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline", **(env or {})},
    )
