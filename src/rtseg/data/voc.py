"""Pascal VOC 2012 as distributed: ``JPEGImages/``, palette PNGs in ``SegmentationClass/``, split lists.

``ImageSets/Segmentation/<split>.txt`` names one image id per line; ``JPEGImages/<id>.jpg`` pairs with
``SegmentationClass/<id>.png``, a palette ("P" mode) PNG whose indices are the 21 classes and whose
255 border around objects is the ignore label. The test labels were never published: there is no
test split (``SplitNotFound``) unless ``test_fallback`` names one to read instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rtseg.data.base import IGNORE_INDEX, PairedFiles, require_dir
from rtseg.errors import DataError, SplitNotFound

log = logging.getLogger(__name__)


def read_split_list(list_file: Path) -> list[str]:
    """The image ids of a VOC split list (one id per line; blank lines ignored)."""
    if not list_file.is_file():
        raise DataError(f"split list not found: {list_file} (expected one image id per line)")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"split list {list_file} is empty: expected one image id per line")
    return ids


def voc(
    root: str,
    split: str = "train",
    num_classes: int = 21,
    images_dir: str = "JPEGImages",
    masks_dir: str = "SegmentationClass",
    lists_dir: str = "ImageSets/Segmentation",
    image_suffix: str = ".jpg",
    test_fallback: str | None = None,
    verify: bool = True,
    transform=None,
) -> PairedFiles:
    """One VOC split; ``masks_dir=SegmentationClassAug`` (+ its lists) reads the SBD-augmented set."""
    base = require_dir(
        Path(root), "Pascal VOC root (set data.root or VOC_DIR; expected .../VOCdevkit/VOC2012)"
    )
    if split == "test":
        if not test_fallback:
            raise SplitNotFound("Pascal VOC has no public test labels: there is no test split")
        log.warning("Pascal VOC has no public test labels: the test split uses %s", test_fallback)
        split = test_fallback
    images = require_dir(base / images_dir, "VOC image")
    masks = require_dir(base / masks_dir, "VOC mask")
    list_file = base / lists_dir / f"{split}.txt"
    pairs = []
    for image_id in read_split_list(list_file):
        img, msk = images / f"{image_id}{image_suffix}", masks / f"{image_id}.png"
        if not img.is_file():
            extra = f" (its mask {msk.name} exists)" if msk.is_file() else ""
            raise DataError(f"image {img} listed in {list_file} not found{extra}")
        if not msk.is_file():
            raise DataError(f"mask {msk} for image {img} listed in {list_file} not found")
        pairs.append((img, msk))
    return PairedFiles(
        pairs, num_classes, IGNORE_INDEX, verify=verify, transform=transform, split=split
    )
