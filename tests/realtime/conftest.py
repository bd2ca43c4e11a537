"""Fixtures for the realtime tests: an indexed video, composed configs (checkpoints: tests/conftest.py)."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rtseg.utils.config import compose_config  # noqa: E402

from .helpers import FRAME_H, FRAME_W, encode_index  # noqa: E402


@pytest.fixture(scope="session")
def indexed_video(tmp_path_factory):
    """An mp4 of 30 frames whose index is written into the pixels."""
    path = tmp_path_factory.mktemp("video") / "indexed.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (FRAME_W, FRAME_H))
    rng = np.random.default_rng(0)
    for i in range(30):
        frame = rng.integers(60, 200, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
        encode_index(frame, i)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def realtime_cfg(tmp_path):
    """compose(realtime, overrides) with the run folder and log dir inside tmp_path."""

    def make(*overrides):
        return compose_config(
            "realtime",
            [
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.log_dir={tmp_path / 'logs'}",
                "backend=eager",
                "threads=1",
                *overrides,
            ],
        )

    return make
