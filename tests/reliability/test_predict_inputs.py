"""rtseg.load(...).predict takes a path and a PIL image as well as an array; every bad input is an
RtsegError saying what was expected (no raw cv2.error, no "dtype <U23")."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import rtseg
from rtseg.errors import RtsegError


@pytest.fixture(scope="module")
def model(tiny_ckpt):
    return rtseg.load(str(tiny_ckpt), threads=1)


def test_a_path_and_a_pil_image_give_the_arrays_masks(model, tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    png = tmp_path / "photo.png"
    Image.fromarray(rgb).save(png)
    expected = model.predict(rgb)
    assert expected.shape == (40, 60)
    for image in (png, str(png), Image.fromarray(rgb), Image.fromarray(rgb).convert("RGBA")):
        assert np.array_equal(model.predict(image), expected), type(image)
    assert np.array_equal(model.predict_batch([str(png), rgb])[1], expected)
    assert model.overlay(png).shape == (40, 60, 3)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 0, 3), np.uint8), r"shape \(0, 0, 3\).*expected an HxWx3 uint8 RGB"),
        (np.zeros((8, 8, 3), np.float32), r"dtype float32.*expected"),
        (np.zeros((8, 8), np.uint8), r"shape \(8, 8\).*expected"),
        (np.zeros((8, 8, 4), np.uint8), r"shape \(8, 8, 4\).*expected"),
        ("no_such_photo.jpg", r"image file not found: no_such_photo.jpg"),
        (None, r"expected"),
    ],
)
def test_bad_inputs_are_one_clear_error(model, bad, message):
    with pytest.raises(RtsegError, match=message):
        model.predict(bad)


def test_unreadable_files_are_named(model, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(RtsegError, match="cannot read image .*broken.jpg"):
        model.predict(broken)
    with pytest.raises(RtsegError, match="cannot read image"):
        model.predict(tmp_path)  # a folder
    with pytest.raises(RtsegError, match="use predict"):
        model.predict_batch(str(broken))
