"""A phone photo stored sideways (EXIF orientation 6) is read upright everywhere the project reads a
photo: the API, the image-folder source and the dataset readers, by one function
(``rtseg.data.base.upright``); a mask that fits only the stored, unrotated image is named as such
(issue 36)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import rtseg
from rtseg.data.base import PairedFiles, image_size, read_image
from rtseg.errors import DataError
from rtseg.realtime.image_folder_source import ImageFolderSource

STORED = (48, 64)  # (H, W) as the file stores it; viewers show it 64x48


def sideways_jpeg(path, orientation: int = 6):
    """A JPEG of STORED size whose EXIF says: turn me a quarter clockwise to view (6)."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((*STORED, 3), np.uint8)
    rgb[: STORED[0] // 2] = rng.integers(0, 255, 3)  # a top half unlike the bottom one
    rgb[STORED[0] // 2 :] = rng.integers(0, 255, 3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    return path


def stored_and_upright(path) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(path) as im:
        stored = np.asarray(im.convert("RGB"))
    return stored, np.ascontiguousarray(np.rot90(stored, k=-1))  # a quarter turn clockwise


def test_every_reader_gives_the_upright_photo(tmp_path):
    photo = sideways_jpeg(tmp_path / "photo.jpg")
    stored, upright = stored_and_upright(photo)
    assert stored.shape[:2] == STORED
    assert np.array_equal(read_image(photo), upright)
    assert image_size(photo) == upright.shape[:2] == (64, 48)  # the header agrees with the pixels
    frames = [f for f in ImageFolderSource(str(tmp_path)).frames()]
    assert len(frames) == 1 and np.array_equal(frames[0], upright[..., ::-1])


def test_predict_segments_the_upright_photo(tiny_ckpt, tmp_path):
    photo = sideways_jpeg(tmp_path / "photo.jpg")
    _, upright = stored_and_upright(photo)
    model = rtseg.load(str(tiny_ckpt), threads=1)
    expected = model.predict(upright)
    assert expected.shape == (64, 48)
    assert np.array_equal(model.predict(photo), expected)
    with Image.open(photo) as im:  # a PIL image straight from Image.open is turned the same way
        assert np.array_equal(model.predict(im), expected)
    assert model.overlay(photo).shape == (64, 48, 3)


@pytest.fixture
def pair_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RTSEG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_a_mask_of_the_displayed_size_trains(pair_dir):
    photo = sideways_jpeg(pair_dir / "a.jpg")
    mask = pair_dir / "a.png"
    Image.fromarray(np.ones((64, 48), np.uint8)).save(mask)
    ds = PairedFiles([(photo, mask)], num_classes=3)
    image, labels = ds.load(0)
    assert image.shape[:2] == labels.shape == (64, 48)


def test_a_mask_of_the_stored_size_is_named(pair_dir):
    photo = sideways_jpeg(pair_dir / "a.jpg")
    mask = pair_dir / "a.png"
    Image.fromarray(np.ones(STORED, np.uint8)).save(mask)
    with pytest.raises(
        DataError, match=r"64x48 but mask .*48x64: the image has EXIF orientation 6"
    ):
        PairedFiles([(photo, mask)], num_classes=3)
    Image.fromarray(np.ones((30, 30), np.uint8)).save(mask)  # a plain mismatch says nothing more
    with pytest.raises(DataError, match=r"is 30x30$"):
        PairedFiles([(photo, mask)], num_classes=3)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif", ".jpg"])
def test_the_header_size_is_the_read_size_in_every_format(tmp_path, suffix):
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(np.zeros((*STORED, 3), np.uint8)).save(path, exif=exif)
    assert image_size(path) == read_image(path).shape[:2] == STORED[::-1]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_photo_without_exif_keeps_its_size(tmp_path, suffix):
    """CamVid's PNGs carry no EXIF: their header is read without decoding (Pillow's ``im`` asserts
    on an image it has not loaded, which stopped every CamVid run once)."""
    path = tmp_path / f"frame{suffix}"
    Image.fromarray(np.zeros((*STORED, 3), np.uint8)).save(path)
    assert image_size(path) == read_image(path).shape[:2] == STORED
