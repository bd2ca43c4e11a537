"""One LightningDataModule for every dataset: the readers differ, batching and transforms do not."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import lightning as L
from torch.utils.data import DataLoader, Dataset

from rtseg.data.base import IGNORE_INDEX
from rtseg.data.transforms import build_transform, reseed_worker
from rtseg.utils import IMAGENET_MEAN, IMAGENET_STD, default_palette

SPLITS = ("train", "val", "test")


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
        **_: object,
    ):
        super().__init__()
        if len(class_names) != num_classes:
            raise ValueError(
                f"data.class_names has {len(class_names)} names but data.num_classes={num_classes}"
            )
        self.name = name
        self.dataset_factories = dict(datasets)
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.palette = [list(c) for c in (palette or default_palette(num_classes))]
        self.augmentations = dict(augmentations or {})
        self.mean, self.std = list(mean), list(std)
        self.ignore_index = ignore_index
        self.input_size = list(input_size)
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.binary_class = binary_class
        self._sets: dict[str, Dataset] = {}

    def set_normalization(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Follow the network's pretrained weights; must be called before ``setup``."""
        self.mean, self.std = list(mean), list(std)
        self._sets.clear()

    def dataset(self, split: str) -> Dataset:
        if split not in self._sets:
            if split not in self.dataset_factories:
                raise ValueError(
                    f"data config has no '{split}' split (has {sorted(self.dataset_factories)})"
                )
            transform = build_transform(self.augmentations.get(split), self.mean, self.std)
            ds = self.dataset_factories[split](transform=transform)
            if self.binary_class is not None:
                ds = _Binary(ds, self.binary_class, self.ignore_index)
            self._sets[split] = ds
        return self._sets[split]

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(
            stage, SPLITS
        )
        for split in wanted:
            if split in self.dataset_factories:
                self.dataset(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size if split == "train" else self.val_batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(self.dataset(split)) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=reseed_worker,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

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
