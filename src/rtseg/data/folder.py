"""The user's own data: ``images/`` and ``masks/`` paired by file stem.

Masks hold class indices (grayscale or palette PNG), or colours: RGB masks are decoded through
``data.palette`` / ``data.palette_file``, with ``data.ignore_colors`` mapped to the ignore label.

Either one folder per split (``<root>/train/images``, ``<root>/val/images``, ...) or a single
``<root>/images`` + ``<root>/masks`` that is split deterministically by a hash of each file stem
(``val_fraction`` of the pairs go to val). Only a ``<root>/test`` folder makes a test split: without
one the reader raises ``SplitNotFound`` and the test stage is skipped.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from rtseg.data.base import IGNORE_INDEX, PairedFiles, require_dir
from rtseg.data.palette import ColourTable, resolve_palette
from rtseg.errors import DataError, SplitNotFound

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def pair_by_stem(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    """Pair every image with the mask of the same stem; any unpaired file is an error."""
    imgs = {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    msks = {p.stem: p for p in sorted(masks.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if not imgs:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {images}")
    missing = sorted(set(imgs) - set(msks))
    if missing:
        raise DataError(
            f"image {imgs[missing[0]]} has no mask named {missing[0]}.* in {masks} ({len(missing)} unpaired)"
        )
    orphans = sorted(set(msks) - set(imgs))
    if orphans:
        raise DataError(
            f"mask {msks[orphans[0]]} has no image named {orphans[0]}.* in {images} ({len(orphans)} unpaired)"
        )
    return [(imgs[s], msks[s]) for s in sorted(imgs)]


def folder(
    root: str,
    num_classes: int,
    split: str = "train",
    images_dir: str = "images",
    masks_dir: str = "masks",
    val_fraction: float = 0.2,
    ignore_index: int = IGNORE_INDEX,
    verify: bool = True,
    transform=None,
    palette: list[list[int]] | None = None,
    palette_file: str | None = None,
    ignore_colors: list[list[int]] | None = None,
) -> PairedFiles:
    """One split; masks hold class indices, or colours of ``palette`` / ``palette_file``."""
    colours = resolve_palette(palette, palette_file, num_classes)
    table = ColourTable(colours, ignore_colors, ignore_index) if colours else None
    base = require_dir(Path(root), "data.root")
    split_dirs = [s for s in ("train", "val", "test") if (base / s / images_dir).is_dir()]
    if split_dirs:
        if split not in split_dirs and split != "train":
            raise SplitNotFound(
                f"{base} has no {split} split: {base / split / images_dir} is absent"
            )
        images = require_dir(base / split / images_dir, f"{split} images")
        pairs = pair_by_stem(images, require_dir(base / split / masks_dir, f"{split} masks"))
    elif (base / images_dir).is_dir():
        if split == "test":
            raise SplitNotFound(
                f"{base} has no test split: one {images_dir}/ folder is split into train and val "
                f"only (make {base}/<train|val|test>/{images_dir} for a test split)"
            )
        pairs = pair_by_stem(base / images_dir, require_dir(base / masks_dir, "masks"))
        in_val = [zlib.crc32(img.stem.encode()) % 1000 < val_fraction * 1000 for img, _ in pairs]
        pairs = [p for p, v in zip(pairs, in_val, strict=True) if v == (split != "train")]
        if not pairs:
            raise DataError(
                f"{base}: no pairs fall in the {split} split (val_fraction={val_fraction})"
            )
    else:
        raise DataError(
            f"no {images_dir}/ folder in {base}: expected {base}/{images_dir} + {masks_dir}, "
            f"or {base}/<train|val|test>/{images_dir} + {masks_dir}"
        )
    return PairedFiles(
        pairs,
        num_classes,
        ignore_index,
        verify=verify,
        transform=transform,
        split=split,
        colours=table,
    )
