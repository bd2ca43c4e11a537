"""The built-in procedural scenes, the datamodule around them, and per-worker augmentation seeds."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from rtseg.data.base import SegmentationDataset
from rtseg.data.datamodule import _Binary
from rtseg.data.synthetic import CLASS_NAMES, SyntheticScenes
from rtseg.data.transforms import build_transform, reseed_worker

SIZE = (64, 80)


def test_same_seed_same_scene_and_different_seeds_differ():
    a = SyntheticScenes("train", length=4, size=SIZE, seed=0)
    b = SyntheticScenes("train", length=4, size=SIZE, seed=0)
    img, mask = a.load(2)
    for again in (a.load(2), b.load(2)):
        assert np.array_equal(img, again[0]) and np.array_equal(mask, again[1])
    other_img, other_mask = SyntheticScenes("train", length=4, size=SIZE, seed=1).load(2)
    assert not np.array_equal(img, other_img) and not np.array_equal(mask, other_mask)
    assert not np.array_equal(img, a.load(3)[0])


def test_splits_differ():
    scenes = {s: SyntheticScenes(s, length=3, size=SIZE, seed=0) for s in ("train", "val", "test")}
    for i in range(3):
        images = [scenes[s].load(i)[0] for s in scenes]
        assert not np.array_equal(images[0], images[1])
        assert not np.array_equal(images[0], images[2])
        assert not np.array_equal(images[1], images[2])
    with pytest.raises(ValueError, match="split must be one of"):
        SyntheticScenes("holdout")


def test_every_class_occurs_and_labels_are_in_range():
    ds = SyntheticScenes("train", length=12, size=SIZE, seed=0)
    seen = set()
    for i in range(len(ds)):
        img, mask = ds.load(i)
        assert img.shape == (*SIZE, 3) and img.dtype == np.uint8
        assert mask.shape == SIZE and mask.max() < len(CLASS_NAMES)
        seen |= set(np.unique(mask).tolist())
    assert seen == set(range(len(CLASS_NAMES)))


def test_getitem_gives_normalised_float_image_and_long_mask():
    ds = SyntheticScenes(
        "val", length=2, size=SIZE, seed=0, transform=build_transform([], (0.5,) * 3, (0.25,) * 3)
    )
    image, mask = ds[0]
    assert image.dtype == torch.float32 and tuple(image.shape) == (3, *SIZE)
    assert mask.dtype == torch.int64 and tuple(mask.shape) == SIZE
    raw = ds.load(0)[0].astype(np.float32) / 255.0
    assert torch.allclose(image, torch.from_numpy((raw - 0.5) / 0.25).permute(2, 0, 1), atol=1e-5)


def test_datamodule_batches(layouts):
    cfg = layouts.compose(
        "data=synthetic", "data.input_size=[64,80]", "data.lengths.train=8", "data.lengths.val=6",
        "data.lengths.test=4", "data.batch_size=4", "data.val_batch_size=3",
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    image, mask = next(iter(dm.train_dataloader()))
    assert tuple(image.shape) == (4, 3, 64, 80) and image.dtype == torch.float32
    assert tuple(mask.shape) == (4, 64, 80) and mask.dtype == torch.int64
    assert 0 <= int(mask.min()) and int(mask.max()) < 7
    assert len(dm.train_dataloader()) == 2  # 8 samples, batches of 4, last incomplete batch dropped
    val = list(dm.val_dataloader())
    assert [len(b[0]) for b in val] == [3, 3]
    dm.setup("test")
    assert tuple(next(iter(dm.test_dataloader()))[0].shape) == (3, 3, 64, 80)
    meta = dm.meta()
    assert meta["num_classes"] == 7 and meta["class_names"] == list(CLASS_NAMES)
    assert meta["input_size"] == [64, 80] and meta["ignore_index"] == 255


class _Crops(SegmentationDataset):
    """Every sample is a random crop of one fixed noise picture: the crop shows the augmentation draw."""

    def __init__(self, n: int):
        super().__init__(A.Compose([A.RandomCrop(8, 8)]))
        self.n = n
        self.picture = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)

    def __len__(self):
        return self.n

    def load(self, index):
        return self.picture, np.zeros((64, 64), np.uint8)


def _per_worker_crops(dataset, worker_init_fn) -> list[list[torch.Tensor]]:
    loader = DataLoader(dataset, batch_size=1, num_workers=2, worker_init_fn=worker_init_fn)
    crops = [
        image[0] for image, _ in loader
    ]  # worker 0 loads batches 0, 2, ...; worker 1 loads 1, 3, ...
    return [crops[0::2], crops[1::2]]


def test_reseed_worker_gives_each_worker_its_own_augmentations():
    # albumentations 2.x Compose keeps its own RNG, so without reseeding both workers draw the same crops
    first, second = _per_worker_crops(_Crops(6), None)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    first, second = _per_worker_crops(_Crops(6), reseed_worker)
    assert not any(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    # also through the datamodule's binary wrapper, which hides the transform one level down
    first, second = _per_worker_crops(
        _Binary(_Crops(6), positive=1, ignore_index=255), reseed_worker
    )
    assert not any(torch.equal(a, b) for a, b in zip(first, second, strict=True))
