"""A teacher's class probabilities stored once per training image (offline distillation).

A *target set* is one folder per (teacher weights, test-time augmentation, teacher input size,
storage stride): ``<root>/<teacher sha256[:16]>-<tta>-<H>x<W>-s<stride>/``. Each entry is one
image's probabilities, named by the sha256 of the image file's bytes, so an edited or replaced
image simply has no entry (it is built again) and a renamed one keeps its entry. An entry holds:

- ``probs``: (K, h, w) uint8, the probabilities x 255 (rounded) at ``1/stride`` of the image's own
  resolution. At CamVid's 360x480, 11 classes and stride 2 that is 475 KB raw, ~60-120 KB
  compressed; uint8 loses at most 0.002 of a probability (half a step);
- ``teacher_sha256`` and ``image_sha256``: checked at every read, so an entry written for other
  weights or another image is never used (``read`` returns None: the builder writes it again).

The set's ``manifest.json`` records the teacher, its TTA and size; ``digest`` names the exact
targets a run used (over the entries of its images), for the run record and a model card.
Building needs a network and lives above this layer (``rtseg.training.teacher_targets``); this
module only stores, checks and reads.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from rtseg.errors import DataError
from rtseg.utils.paths import file_sha256, write_atomic

MANIFEST = "manifest.json"


def set_name(teacher_sha256: str, tta: str, size: Sequence[int], stride: int) -> str:
    """The folder name of a target set: what the probabilities depend on, and nothing else."""
    return f"{teacher_sha256[:16]}-{tta}-{int(size[0])}x{int(size[1])}-s{int(stride)}"


class TargetSet:
    """One folder of stored teacher probabilities (see the module docstring)."""

    def __init__(self, folder: str | Path, manifest: dict):
        self.folder = Path(folder)
        self.manifest = dict(manifest)
        self.teacher_sha256 = str(manifest["teacher_sha256"])
        self.num_classes = int(manifest["num_classes"])
        self.stride = int(manifest["stride"])

    @classmethod
    def create(cls, root: str | Path, manifest: dict) -> TargetSet:
        """Open (or start) the set for ``manifest`` under ``root``; a manifest of other weights
        under the same name (a truncated-hash collision, an edited file) is refused."""
        folder = Path(root).expanduser() / set_name(
            manifest["teacher_sha256"], manifest["tta"], manifest["input_size"], manifest["stride"]
        )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(
                f"teacher targets: cannot create {folder} ({e.strerror}): set teacher_targets.root "
                "(or RTSEG_CACHE_DIR) to a writable folder"
            ) from None
        path = folder / MANIFEST
        if path.is_file():
            stored = _read_json(path)
            keys = ("teacher_sha256", "tta", "input_size", "stride", "num_classes")
            if any(stored.get(k) != manifest.get(k) for k in keys):
                raise DataError(
                    f"teacher targets: {path} describes other targets "
                    f"({ {k: stored.get(k) for k in keys} }); remove {folder} to rebuild it"
                )
        else:
            write_atomic(path, json.dumps(manifest, indent=2))
        return cls(folder, manifest)

    @classmethod
    def open(cls, folder: str | Path) -> TargetSet:
        """An existing set (its manifest must be there)."""
        folder = Path(folder).expanduser()
        if not (folder / MANIFEST).is_file():
            raise DataError(f"teacher targets: {folder} has no {MANIFEST}: not a target set")
        return cls(folder, _read_json(folder / MANIFEST))

    def entry_path(self, image_sha256: str) -> Path:
        return self.folder / f"{image_sha256}.npz"

    def write(self, image_sha256: str, probs: np.ndarray) -> Path:
        """Store one image's probabilities ((K, h, w) floats in [0, 1]) atomically."""
        if probs.ndim != 3 or probs.shape[0] != self.num_classes:
            raise ValueError(
                f"expected ({self.num_classes}, h, w) probabilities, got {probs.shape}"
            )
        q = np.clip(np.rint(np.asarray(probs, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            probs=q,
            teacher_sha256=np.array(self.teacher_sha256),
            image_sha256=np.array(image_sha256),
        )
        path = self.entry_path(image_sha256)
        write_atomic(path, buf.getvalue())
        return path

    def read(self, image_sha256: str, image_hw: Sequence[int] | None = None) -> np.ndarray | None:
        """(K, h, w) uint8 probabilities of the image with this content hash, or None when there
        is no valid entry: missing, unreadable, of another teacher, of another image, or of a
        shape that is not ``1/stride`` of ``image_hw``."""
        path = self.entry_path(image_sha256)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if (
                    str(z["teacher_sha256"]) != self.teacher_sha256
                    or str(z["image_sha256"]) != image_sha256
                ):
                    return None
                probs = z["probs"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # truncated, foreign
            return None
        if probs.dtype != np.uint8 or probs.ndim != 3 or probs.shape[0] != self.num_classes:
            return None
        if image_hw is not None and tuple(probs.shape[1:]) != stored_size(image_hw, self.stride):
            return None
        return probs

    def digest(self, image_hashes: Sequence[str]) -> str:
        """sha256 over the entries of these images (sorted): names the exact targets a run used."""
        h = hashlib.sha256(self.teacher_sha256.encode())
        for sha in sorted(set(image_hashes)):
            h.update(f"{sha}:{file_sha256(self.entry_path(sha))}\n".encode())
        return h.hexdigest()

    def size_on_disk(self, image_hashes: Sequence[str]) -> int:
        return sum(self.entry_path(s).stat().st_size for s in set(image_hashes))


def stored_size(image_hw: Sequence[int], stride: int) -> tuple[int, int]:
    """The stored resolution of an image's targets: its own size divided by ``stride``, rounded up."""
    return (-(-int(image_hw[0]) // stride), -(-int(image_hw[1]) // stride))


def upsample(probs: np.ndarray, image_hw: Sequence[int]) -> np.ndarray:
    """(K, h, w) uint8 -> (H, W, K) uint8 at the image's size (bilinear), the layout albumentations
    moves with the image as a mask target."""
    hwc = np.ascontiguousarray(probs.transpose(1, 2, 0))
    h, w = int(image_hw[0]), int(image_hw[1])
    if hwc.shape[:2] == (h, w):
        return hwc
    out = cv2.resize(hwc, (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(h, w, -1)  # cv2 drops the channel axis of a one-class map


class SoftTargets:
    """What a training dataset reads: each image's stored probabilities at the image's size.

    ``hashes[i]`` is the content hash of the dataset's i-th image; every entry is checked when this
    is built (``missing`` must be empty), so a run never starts with targets of another teacher or
    image."""

    def __init__(
        self, target_set: TargetSet, hashes: Sequence[str], sizes: Sequence[Sequence[int]]
    ):
        self.target_set = target_set
        self.hashes = list(hashes)
        self.sizes = [tuple(int(v) for v in s) for s in sizes]
        missing = [
            i
            for i, (sha, hw) in enumerate(zip(self.hashes, self.sizes, strict=True))
            if target_set.read(sha, hw) is None
        ]
        if missing:
            raise DataError(
                f"teacher targets: {len(missing)} of {len(self.hashes)} training images have no "
                f"valid entry in {target_set.folder}: build them first (rtseg-targets, or "
                "rtseg-train builds them when teacher_targets= is set)"
            )

    def __len__(self) -> int:
        return len(self.hashes)

    def __call__(self, index: int, image_hw: Sequence[int]) -> np.ndarray:
        """The ``index``-th image's probabilities as (H, W, K) uint8 at ``image_hw``."""
        if tuple(image_hw) != self.sizes[index]:
            raise DataError(
                f"teacher targets: training image {index} is {image_hw[0]}x{image_hw[1]} now but "
                f"its targets were built for {self.sizes[index][0]}x{self.sizes[index][1]}"
            )
        probs = self.target_set.read(self.hashes[index], self.sizes[index])
        if probs is None:  # removed or replaced while training
            raise DataError(
                f"teacher targets: the entry of training image {index} in "
                f"{self.target_set.folder} vanished or changed during the run"
            )
        return upsample(probs, self.sizes[index])

    def digest(self) -> str:
        return self.target_set.digest(self.hashes)


def image_hashes(paths: Sequence[Path]) -> list[str]:
    """The sha256 of each image file's bytes: the key of its targets."""
    return [file_sha256(Path(p)) for p in paths]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"teacher targets: cannot read {path} ({e})") from None
