"""The Python API: load by spec, predict any image size, overlay, batches."""

from __future__ import annotations

import numpy as np
import pytest

import rtseg
from rtseg.errors import RtsegError


def test_shipped_model_predicts_at_the_image_size():
    m = rtseg.load("camvid")
    assert m.classes[3] == "road" and len(m.palette) == 11
    img = np.zeros((540, 960, 3), np.uint8)
    labels = m.predict(img)
    assert labels.shape == (540, 960) and labels.dtype == np.uint8
    assert labels.max() < 11
    over = m.overlay(img)
    assert over.shape == (540, 960, 3) and over.dtype == np.uint8 and over.any()


def test_batch_of_mixed_sizes_matches_single_predictions():
    m = rtseg.load("camvid")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (90, 200, 3), dtype=np.uint8)
    batch = m.predict_batch([a, b])
    assert [x.shape for x in batch] == [(120, 160), (90, 200)]
    assert np.array_equal(batch[0], m.predict(a))


def test_bad_images_and_backends_are_one_line_errors():
    m = rtseg.load("camvid")
    with pytest.raises(RtsegError, match="expected an HxWx3 uint8"):
        m.predict(np.zeros((10, 10), np.float32))
    # the shipped model carries its int8 evidence (calibration ranges, measured drop): no data needed
    q8 = rtseg.load("camvid", backend="openvino-int8")
    assert q8.backend.precision == "int8" and "model card" in q8.backend.quality["reason"]


def test_int8_without_images_or_card_is_one_line(tmp_path, checkpoint_writer):
    """A user's own model with no readable data and no card: int8 is refused, never calibrated on noise."""
    ckpt = checkpoint_writer(tmp_path / "own.ckpt")
    with pytest.raises(RtsegError, match="int8"):
        rtseg.load(str(ckpt), backend="openvino-int8")
