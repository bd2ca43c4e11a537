"""Val/test scored at each label's own resolution: the network sees the input size, logits are upsampled."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from rtseg.errors import RtsegError
from rtseg.metrics import SegMetrics
from rtseg.training.module import SegmentationModule

SIZES = [(32, 48), (40, 56), (32, 48)]


def _mixed_sizes(layouts, root):
    """train/val folders whose val images come in two sizes."""
    for split in ("train", "val"):
        for n, (h, w) in enumerate(SIZES):
            rng = np.random.default_rng(n)
            layouts.save_rgb(
                root / split / "images" / f"f{n}.png",
                rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            )
            layouts.save_mask(root / split / "masks" / f"f{n}.png", rng.choice(np.array([0, 1, 2, 255], np.uint8), (h, w)))  # fmt: skip
    return root


def _dm(layouts, root, *extra):
    cfg = layouts.compose(
        "data=folder", f"data.root={root}", "data.num_classes=3", "data.class_names=[a,b,c]",
        "data.input_size=[16,24]", "data.val_batch_size=3", *extra,
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    return dm


def test_val_batches_keep_native_masks_and_scores_match_upsampled_logits(layouts, tmp_path):
    dm = _dm(layouts, _mixed_sizes(layouts, tmp_path / "mine"))
    images, masks = next(iter(dm.val_dataloader()))
    assert tuple(images.shape) == (3, 3, 16, 24)  # the network's input size
    assert [tuple(m.shape) for m in masks] == SIZES  # the labels as stored
    torch.manual_seed(0)
    module = SegmentationModule(torch.nn.Conv2d(3, 3, 3, padding=1), num_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer
        module._step((images, masks), "val")
    expected = SegMetrics(3)
    with torch.no_grad():
        logits = module(images)
    for i, m in enumerate(masks):
        up = torch.nn.functional.interpolate(logits[i : i + 1], size=m.shape, mode="bilinear")
        expected.update(up.argmax(1), m[None])
    got = module.metrics["val_scores"]
    assert torch.equal(got.confmat, expected.confmat)
    assert int(got.confmat.sum()) == sum(int((m != 255).sum()) for m in masks)


def test_eval_native_false_scores_resized_labels(layouts, tmp_path):
    dm = _dm(layouts, _mixed_sizes(layouts, tmp_path / "mine"), "data.eval_native=false")
    images, masks = next(iter(dm.val_dataloader()))
    assert torch.is_tensor(masks) and tuple(masks.shape) == (3, 16, 24)


def test_native_scoring_refuses_geometric_val_augmentations(layouts, tmp_path):
    root = _mixed_sizes(layouts, tmp_path / "mine")
    pad = "data.augmentations.val=[{_target_: albumentations.PadIfNeeded, min_height: 64, min_width: 64}]"
    with pytest.raises(
        RtsegError, match="may only resize .* not PadIfNeeded: set data.eval_native=false"
    ):
        _dm(layouts, root, pad)


@pytest.mark.parametrize("augment", ["camvid", "camvid_robust"])
def test_camvid_input_size_is_the_size_the_network_trains_and_validates_at(
    layouts, tmp_path, augment
):
    """data.input_size=2x native: train crops come from the upscaled frame (their scale range is
    relative to it), val images reach the network at that size, labels are scored as stored."""
    root = layouts.camvid(tmp_path / "camvid")
    h, w = layouts.H, layouts.W
    cfg = layouts.compose(
        "data=camvid", f"data/augment={augment}", f"data.root={root}", "data.verify=false",
        f"data.input_size=[{2 * h},{2 * w}]", f"data.crop_size=[{2 * h},{2 * w}]",
        "data.num_workers=0", "data.val_batch_size=2",
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    images, masks = next(iter(dm.val_dataloader()))
    assert tuple(images.shape[-2:]) == (2 * h, 2 * w)
    assert all(tuple(m.shape) == (h, w) for m in masks)
    train = dm.dataset("train")
    image, mask = train[0]
    assert tuple(image.shape[-2:]) == (2 * h, 2 * w) == tuple(mask.shape)
    # RandomScale draws 0.75-1.5 (0.5-2 robust) of the resized frame; a 2x crop of the native
    # frame would need padding at every draw below 2: with the resize, most crops hold no padding
    padded = [int((train[i % len(train)][1] == 255).all(dim=1).sum()) for i in range(16)]
    assert sum(p == 0 for p in padded) >= 4
