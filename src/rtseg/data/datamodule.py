"""One LightningDataModule for every dataset: the readers differ, batching and transforms do not."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping, Sequence

import albumentations as A
import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from rtseg.data.base import IGNORE_INDEX
from rtseg.data.palette import resolve_palette
from rtseg.data.sequences import sequence_counts
from rtseg.data.transforms import build_transform, reseed_worker
from rtseg.errors import RtsegError, SplitNotFound
from rtseg.utils.images import IMAGENET_MEAN, IMAGENET_STD, default_palette

SPLITS = ("train", "val", "test")


def init_worker(worker_id: int) -> None:
    """A DataLoader worker ends quietly on SIGTERM, leaving the run's stop to the main process.

    A scheduler signals every process of a job (SLURM's scancel and time limit): a worker killed
    by the signal made the main process raise "DataLoader worker ... is killed by signal:
    Terminated", so a run that SIGTERM should save and mark ``interrupted`` ended ``failed``. An
    exit with status 0 is no error to the DataLoader, and the main process handles its own SIGTERM
    (save, ``interrupted``, 143). Ignoring SIGTERM instead would hang every exit: multiprocessing
    ends daemonic workers with SIGTERM and waits for them. Ctrl-C stays as torch has it (the
    worker's loop ends on KeyboardInterrupt)."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    reseed_worker(worker_id)


class _Binary(Dataset):
    """Maps a multi-class dataset to foreground/background for the seed article's binary net."""

    def __init__(self, base, positive: int, ignore_index: int):
        self.base, self.positive, self.ignore_index = base, positive, ignore_index

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        image, mask = self.base[i]
        out = (mask == self.positive).long()
        out[mask == self.ignore_index] = self.ignore_index
        return image, out


class SegDataModule(L.LightningDataModule):
    """Builds the three splits from dataset factories (Hydra partials) and per-split augmentations."""

    def __init__(
        self,
        name: str,
        datasets: Mapping[str, Callable[..., Dataset]],
        num_classes: int,
        class_names: Sequence[str],
        palette: Sequence[Sequence[int]] | None = None,
        palette_file: str | None = None,
        augmentations: Mapping[str, Sequence] | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        ignore_index: int = IGNORE_INDEX,
        input_size: Sequence[int] = (128, 160),
        batch_size: int = 16,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        binary_class: int | None = None,
        eval_native: bool = True,
        **_: object,
    ):
        super().__init__()
        if len(class_names) != num_classes:
            raise ValueError(
                f"data.class_names has {len(class_names)} names but data.num_classes={num_classes}"
            )
        self.name = name
        # a split set to null in the config does not exist (no test labels: no test stage)
        self.dataset_factories = {k: v for k, v in datasets.items() if v is not None}
        self.num_classes = num_classes
        self.class_names = list(class_names)
        colours = resolve_palette(palette, palette_file, num_classes, class_names)
        self.palette = colours or default_palette(num_classes)
        self.augmentations = dict(augmentations or {})
        self.mean, self.std = list(mean), list(std)
        self.ignore_index = ignore_index
        self.input_size = list(input_size)
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.binary_class = binary_class
        self.eval_native = eval_native
        self._sets: dict[str, Dataset] = {}
        self.soft_targets = None

    def use_soft_targets(self, soft_targets) -> None:
        """Train on a teacher's stored probabilities beside the labels (offline distillation):
        training items become (image, mask, soft); ``soft_targets`` is a
        ``rtseg.data.soft_targets.SoftTargets`` built for this training split's images."""
        if self.binary_class is not None:
            raise RtsegError(
                "teacher_targets needs the teacher's classes: not available with data.binary_class"
            )
        self.soft_targets = soft_targets
        if "train" in self._sets:
            self._sets["train"].soft_targets = soft_targets

    def set_normalization(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Follow the network's pretrained weights; must be called before ``setup``."""
        self.mean, self.std = list(mean), list(std)
        self._sets.clear()

    def dataset(self, split: str) -> Dataset:
        if split not in self._sets:
            if split not in self.dataset_factories:
                raise SplitNotFound(
                    f"data {self.name} has no {split} split (has {', '.join(self.dataset_factories)})"
                )
            transform = build_transform(self.augmentations.get(split), self.mean, self.std)
            ds = self.dataset_factories[split](transform=transform)
            if self.eval_native and split != "train":
                _require_resize_only(self.augmentations.get(split), split)
                ds.native_masks = True
            if split == "train" and self.soft_targets is not None:
                ds.soft_targets = self.soft_targets
            if self.binary_class is not None:
                ds = _Binary(ds, self.binary_class, self.ignore_index)
            self._sets[split] = ds
        return self._sets[split]

    def has_split(self, split: str) -> bool:
        """Whether the data has this split (a reader raises ``SplitNotFound`` when it does not)."""
        try:
            self.dataset(split)
        except SplitNotFound:
            return False
        return True

    def setup(self, stage: str | None = None) -> None:
        # fitting builds (and so checks) the test split too: a bad test file stops the run before
        # training, not after it
        wanted = {"validate": ("val",), "test": ("test",)}.get(stage, SPLITS)
        for split in wanted:
            if split != stage and (split == "test" or (split == "val" and stage == "fit")):
                self.has_split(split)  # optional while fitting (no val: trained without one)
            elif split in self.dataset_factories:
                self.dataset(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        native = self.eval_native and split != "train"
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size if split == "train" else self.val_batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(self.dataset(split)) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=init_worker,
            collate_fn=collate_native if native else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        # no val split (e.g. CamVid's trainval protocol): Lightning runs no validation loop
        return self._loader("val", shuffle=False) if self.has_split("val") else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def val_protocol(self) -> str:
        """How the labelled frames were split into train and val (``standard`` unless a reader says)."""
        train = self.dataset("train")
        return getattr(getattr(train, "base", train), "protocol", None) or "standard"

    def describe_splits(self) -> dict[str, dict]:
        """Per built split: its size and, when file names carry them, the frames per video sequence."""
        out = {}
        for split, ds in self._sets.items():
            base = getattr(ds, "base", ds)
            pairs = getattr(base, "pairs", None)
            entry: dict = {"images": len(ds)}
            if pairs:
                counts = sequence_counts(img for img, _ in pairs)
                if counts:
                    entry["sequences"] = counts
            out[split] = entry
        return out

    def meta(self) -> dict:
        """What a consumer of a trained model needs to know about its data (stored in checkpoints)."""
        return {
            "dataset": self.name,
            "num_classes": self.num_classes if self.binary_class is None else 2,
            "class_names": self.class_names
            if self.binary_class is None
            else ["background", self.class_names[self.binary_class]],
            "palette": self.palette
            if self.binary_class is None
            else [[0, 0, 0], self.palette[self.binary_class]],
            "ignore_index": self.ignore_index,
            "mean": self.mean,
            "std": self.std,
            "input_size": self.input_size,
        }


# geometric transforms whose output the module can map back to the label by resizing the logits
_RESIZES = (A.Resize, A.LongestMaxSize, A.SmallestMaxSize)


def _require_resize_only(augmentations, split: str) -> None:
    """Native-resolution scoring upsamples logits to the label: only resizes can precede it."""
    for t in augmentations or []:
        if not isinstance(t, (*_RESIZES, A.ImageOnlyTransform)):
            raise RtsegError(
                f"data.eval_native scores {split} at each label's own size, so data.augmentations."
                f"{split} may only resize (or change pixel values), not {type(t).__name__}: "
                "set data.eval_native=false"
            )


def collate_native(batch):
    """Images stacked (one input size); masks stacked when all one size, else kept as a list."""
    images = torch.stack([img for img, _ in batch])
    masks = [m for _, m in batch]
    if all(m.shape == masks[0].shape for m in masks):
        return images, torch.stack(masks)
    return images, masks
