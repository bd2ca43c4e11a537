"""Cityscapes as distributed: ``leftImg8bit/<split>/<city>/`` beside ``gtFine/<split>/<city>/``.

``<name>_leftImg8bit.png`` pairs with ``<name>_gtFine_labelIds.png``; the 34 label ids are mapped to
the 19 train ids of cityscapesScripts (``id_to_train_id``, from config) and every other id to the
ignore label. ``gtFine/test`` holds placeholders only (the test labels are not public), so there is
no test split (``SplitNotFound``) unless ``test_fallback`` names one to read instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rtseg.data.base import IGNORE_INDEX, PairedFiles, require_dir
from rtseg.errors import DataError, SplitNotFound

log = logging.getLogger(__name__)

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"

# cityscapesScripts labels.py: label id -> train id for the 19 evaluated classes
ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


def label_map(id_to_train_id: Mapping[int, int], ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """A 256-entry lookup table: label id -> train id, ``ignore_index`` for every unlisted id."""
    lut = np.full(256, ignore_index, dtype=np.uint8)
    for label_id, train_id in id_to_train_id.items():
        lut[int(label_id)] = int(train_id)
    return lut


def _files(folder: Path, suffix: str) -> dict[tuple[str, str], Path]:
    """{(city, frame name): path} for every ``<city>/<name><suffix>`` under ``folder``."""
    return {(p.parent.name, p.name[: -len(suffix)]): p for p in sorted(folder.glob(f"*/*{suffix}"))}


def cityscapes(
    root: str,
    split: str = "train",
    num_classes: int = 19,
    id_to_train_id: Mapping[int, int] | None = None,
    labels_dir: str = "gtFine",
    test_fallback: str | None = None,
    verify: bool = True,
    transform=None,
) -> PairedFiles:
    base = require_dir(Path(root), "Cityscapes root (set data.root or CITYSCAPES_DIR)")
    if split == "test":
        if not test_fallback:
            raise SplitNotFound(
                "Cityscapes has no public test labels (gtFine/test holds placeholders): "
                "there is no test split"
            )
        log.warning(
            "Cityscapes has no public test labels (gtFine/test holds placeholders): the test split uses %s",
            test_fallback,
        )
        split = test_fallback
    images_root = require_dir(
        base / "leftImg8bit" / split, f"Cityscapes {split} image (leftImg8bit/{split}/<city>/)"
    )
    labels_root = require_dir(
        base / labels_dir / split, f"Cityscapes {split} label ({labels_dir}/{split}/<city>/)"
    )
    label_suffix = LABEL_SUFFIX.replace("gtFine", labels_dir)
    images, labels = _files(images_root, IMAGE_SUFFIX), _files(labels_root, label_suffix)
    if not images:
        raise DataError(f"no <city>/*{IMAGE_SUFFIX} images in {images_root}")
    missing = sorted(set(images) - set(labels))
    if missing:
        city, name = missing[0]
        raise DataError(
            f"image {images[missing[0]]} has no label {labels_root / city / (name + label_suffix)} "
            f"({len(missing)} unpaired)"
        )
    orphans = sorted(set(labels) - set(images))
    if orphans:
        city, name = orphans[0]
        raise DataError(
            f"label {labels[orphans[0]]} has no image {images_root / city / (name + IMAGE_SUFFIX)} "
            f"({len(orphans)} unpaired)"
        )
    pairs = [(images[k], labels[k]) for k in sorted(images)]
    lut = label_map(ID_TO_TRAIN_ID if id_to_train_id is None else id_to_train_id)
    return PairedFiles(
        pairs, num_classes, IGNORE_INDEX, lut, verify=verify, transform=transform, split=split
    )
