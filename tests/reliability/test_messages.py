"""Bad images, files and labels are one clear line each (issue 27's weak cases): a PNG whose header
claims a huge size, 16-bit images (scaled, not clipped to white), overlay labels that do not fit,
a text file given as a checkpoint, unreadable run records named instead of skipped in silence."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import rtseg
from rtseg.checkpoints.spec import choose_checkpoint
from rtseg.data.base import read_image
from rtseg.errors import CheckpointError, DataError, RtsegError


def _png_claiming(path, width, height):
    """A real small PNG whose IHDR is edited to claim ``width`` x ``height`` (a decompression
    bomb's header: Pillow refuses it before decoding)."""
    import io

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def test_a_png_claiming_60000x60000_is_one_line(tmp_path):
    path = _png_claiming(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(DataError) as err:
        read_image(path)
    assert str(err.value).startswith(f"cannot read image {path}: ") and "\n" not in str(err.value)
    assert "decompression bomb" in str(err.value).lower()


@pytest.fixture(scope="module")
def model():
    return rtseg.load("camvid", threads=1)


def test_16_bit_images_are_scaled_not_clipped_to_white(tmp_path, model):
    ramp = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    path = tmp_path / "depth16.png"
    Image.fromarray(ramp).save(path)  # a 16-bit grayscale PNG
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3)
    assert rgb.min() == 0 and rgb.max() == 255 and 100 < rgb.mean() < 155  # a ramp, not white
    pil16 = Image.fromarray(ramp)
    assert pil16.mode.startswith("I;16")
    assert model.predict(pil16).shape == (48, 64)
    np.testing.assert_array_equal(model._check(pil16), rgb)


def test_overlay_refuses_labels_that_do_not_fit(model):
    image = np.zeros((40, 60, 3), np.uint8)
    with pytest.raises(
        RtsegError, match=r"expected an integer class map of the image's shape \(40, 60\)"
    ):
        model.overlay(image, labels=np.zeros((10, 10), np.uint8))
    with pytest.raises(RtsegError, match="expected 0..10"):
        model.overlay(image, labels=np.full((40, 60), 42, np.uint8))
    assert model.overlay(image, labels=np.ones((40, 60), np.uint8)).shape == (40, 60, 3)


def test_a_text_file_given_as_a_checkpoint_is_named(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("hello, not a checkpoint")
    with pytest.raises(CheckpointError) as err:
        rtseg.load(str(path))
    assert str(err.value) == (
        f"{path} is not a PyTorch checkpoint (rtseg-train writes a zip archive; this file "
        "starts with 'hell')"
    )


def test_unreadable_run_records_are_named_not_skipped_in_silence(tmp_path, caplog):
    for name in ("a", "b"):
        run = tmp_path / "train" / "runs" / name
        run.mkdir(parents=True)
        (run / "run.json").write_text('{"status": "finished", "val_miou_best": ')  # cut short
    with pytest.raises(CheckpointError) as err:
        choose_checkpoint("best", tmp_path)
    assert "0 run records found, 2 unreadable: " in str(err.value)
    assert str(tmp_path / "train" / "runs" / "a" / "run.json") in str(err.value)
    assert caplog.text.count("is unreadable") == 2
    json.loads("{}")  # (the records above are invalid JSON on purpose)
