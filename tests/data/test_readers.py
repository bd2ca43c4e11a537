"""Each on-disk reader on a tiny copy of its published layout: pairing, label mapping, shapes, dtypes."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from rtseg.data.camvid import camvid
from rtseg.data.cityscapes import cityscapes
from rtseg.data.folder import folder
from rtseg.data.voc import voc
from rtseg.errors import SplitNotFound

H, W = 32, 48
# cityscapesScripts labels.py, written out here independently of the reader and the config
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


def _indices(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _check_batch(batch, batch_size: int, size, num_classes: int, mask_size=None) -> None:
    image, mask = batch
    assert image.dtype == torch.float32 and mask.dtype == torch.int64
    assert tuple(image.shape) == (batch_size, 3, *size)
    assert tuple(mask.shape) == (batch_size, *(mask_size or size))
    values = set(mask.unique().tolist())
    assert values <= set(range(num_classes)) | {255}, values
    assert torch.isfinite(image).all()


def _datamodule(layouts, *overrides):
    cfg = layouts.compose(*overrides, "data.num_workers=0")
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    return cfg, dm


# --- Pascal VOC -------------------------------------------------------------------------------


def test_voc_reads_the_lists_and_keeps_palette_indices(voc_root):
    train, val = voc(str(voc_root), "train"), voc(str(voc_root), "val")
    assert [p[0].name for p in train.pairs] == [
        "2007_000032.jpg",
        "2007_000039.jpg",
        "2008_000002.jpg",
    ]
    assert [p[0].stem for p in val.pairs] == ["2007_000033", "2009_000001"]
    image, mask = train.load(0)
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    # the palette PNG's indices come back unchanged, including the 255 border
    expected = _indices(voc_root / "SegmentationClass" / "2007_000032.png")
    assert np.array_equal(mask, expected)
    assert 255 in mask and 15 in mask and mask[9:23, 9:23].min() == 15


def test_voc_test_split_uses_val_only_when_asked(voc_root, caplog):
    with pytest.raises(SplitNotFound, match="no public test labels"):
        voc(str(voc_root), "test")
    with caplog.at_level(logging.WARNING):
        test = voc(str(voc_root), "test", test_fallback="val")
    assert [p[0].stem for p in test.pairs] == ["2007_000033", "2009_000001"]
    assert "no public test labels" in caplog.text and "uses val" in caplog.text


def test_voc_datamodule_crops_and_pads_to_fixed_sizes(layouts, voc_root):
    _, dm = _datamodule(
        layouts, "data=voc", f"data.root={voc_root}", "data.base_size=32", "data.crop_size=[24,40]",
        "data.eval_size=[40,56]", "data.batch_size=2", "data.val_batch_size=2",
    )  # fmt: skip
    assert dm.meta()["num_classes"] == 21 and len(dm.meta()["palette"]) == 21
    _check_batch(next(iter(dm.train_dataloader())), 2, (24, 40), 21)
    val = next(iter(dm.val_dataloader()))
    _check_batch(val, 2, (40, 56), 21)
    # val keeps the original pixels at the top left; the padding is ignored, never class 0
    assert (val[1][:, H:, :] == 255).all() and (val[1][:, :, W:] == 255).all()
    original = torch.from_numpy(voc(str(voc_root), "val").load(0)[1].astype(np.int64))
    assert torch.equal(val[1][0, :H, :W], original)


# --- Cityscapes -------------------------------------------------------------------------------


def test_cityscapes_maps_label_ids_to_train_ids(cityscapes_root):
    ds = cityscapes(str(cityscapes_root), "train")
    assert len(ds) == 3
    assert [p[0].name for p in ds.pairs][0] == "aachen_000000_000019_leftImg8bit.png"
    for (img_path, label_path), i in zip(ds.pairs, range(len(ds)), strict=True):
        assert label_path.name == img_path.name.replace("leftImg8bit", "gtFine_labelIds")
        ids = _indices(label_path)
        expected = np.full_like(ids, 255)
        for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
            expected[ids == label_id] = train_id
        image, mask = ds.load(i)
        assert image.shape == (H, W, 3)
        assert np.array_equal(mask, expected)
        assert mask[0, 0] == 13 and mask[-1, -1] == 255  # car -> 13, unlabeled -> ignored


def test_cityscapes_config_has_the_standard_table(layouts):
    cfg = layouts.compose("data=cityscapes")
    assert {int(k): int(v) for k, v in cfg.data.id_to_train_id.items()} == CITYSCAPES_TRAIN_IDS
    assert len(cfg.data.class_names) == len(cfg.data.palette) == cfg.data.num_classes == 19
    assert cfg.data.class_names[13] == "car" and list(cfg.data.palette[0]) == [128, 64, 128]


def test_cityscapes_test_split(cityscapes_root, caplog):
    with caplog.at_level(logging.WARNING):
        test = cityscapes(str(cityscapes_root), "test", test_fallback="val")
    assert all("/val/" in str(p[0]) for p in test.pairs) and "uses val" in caplog.text
    # gtFine/test holds placeholders, not labels: no test split unless a fallback is named
    with pytest.raises(SplitNotFound, match="no public test labels"):
        cityscapes(str(cityscapes_root), "test")


def test_cityscapes_datamodule(layouts, cityscapes_root):
    _, dm = _datamodule(
        layouts, "data=cityscapes", f"data.root={cityscapes_root}", "data.base_size=[32,48]",
        "data.crop_size=[16,32]", "data.eval_size=[16,24]", "data.batch_size=2", "data.val_batch_size=3",
    )  # fmt: skip
    _check_batch(next(iter(dm.train_dataloader())), 2, (16, 32), 19)
    # val images at eval_size, labels at their own 32x48 (data.eval_native)
    _check_batch(next(iter(dm.val_dataloader())), 3, (16, 24), 19, mask_size=(32, 48))


# --- CamVid -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lists", [True, False], ids=["segnet-lists", "no-lists"])
def test_camvid_layout(layouts, tmp_path, lists):
    root = layouts.camvid(tmp_path / "camvid", lists=lists)
    train, val, test = (camvid(str(root), s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (4, 2, 2)
    assert all(
        p[0].parent.name == "train" and p[1].parent.name == "trainannot" for p in train.pairs
    )
    for i in range(len(train)):
        raw = _indices(train.pairs[i][1])
        image, mask = train.load(i)
        assert image.shape == (H, W, 3)
        expected = np.where(raw == 11, 255, raw)  # void -> ignored, 0-10 unchanged
        assert np.array_equal(mask, expected)


def test_camvid_without_test_folder_has_no_test_split(layouts, tmp_path, caplog):
    root = layouts.camvid(tmp_path / "camvid", counts={"train": 2, "val": 2})
    with pytest.raises(SplitNotFound, match=f"CamVid has no test split: {root / 'test'} is absent"):
        camvid(str(root), "test")
    # an explicit fallback reads val and says so
    with caplog.at_level(logging.WARNING):
        test = camvid(str(root), "test", fallback_split="val")
    assert (
        all(p[0].parent.name == "val" for p in test.pairs) and "using the val split" in caplog.text
    )


# --- the user's own folder --------------------------------------------------------------------


def test_folder_single_split_is_deterministic_and_disjoint(folder_root):
    train, val = (folder(str(folder_root), 3, split=s) for s in ("train", "val"))
    names = lambda ds: [p[0].name for p in ds.pairs]  # noqa: E731
    assert len(train) > 0 and len(val) > 0
    assert not set(names(train)) & set(names(val))
    assert sorted(names(train) + names(val)) == [f"frame_{n:03d}.png" for n in range(12)]
    with pytest.raises(SplitNotFound, match="split into train and val only"):
        folder(str(folder_root), 3, split="test")
    assert names(folder(str(folder_root), 3, split="train")) == names(
        train
    )  # same split every time
    for ds in (train, val):
        for i in range(len(ds)):
            image, mask = ds.load(i)
            assert image.shape == (H, W, 3) and mask.shape == (H, W)
            assert set(np.unique(mask).tolist()) <= {0, 1, 2, 255}
            assert np.array_equal(mask, _indices(ds.pairs[i][1]))


def test_folder_per_split_folders(layouts, tmp_path):
    root = layouts.folder(tmp_path / "mine", per_split=True)
    train = folder(str(root), 3, split="train")
    assert all(p[0].parent.parent.name == "train" for p in train.pairs) and len(train) == 3
    with pytest.raises(SplitNotFound, match=f"has no test split: {root / 'test' / 'images'}"):
        folder(str(root), 3, split="test")


def test_folder_datamodule_batches_and_determinism(layouts, folder_root):
    _, dm = _datamodule(
        layouts, "data=folder", f"data.root={folder_root}", "data.num_classes=3",
        "data.class_names=[a,b,c]", "data.input_size=[16,24]", "data.batch_size=2",
    )  # fmt: skip
    _check_batch(next(iter(dm.train_dataloader())), 2, (16, 24), 3)
    val = dm.dataset("val")
    a, b = val[0], val[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("name", ["voc", "cityscapes", "camvid", "folder", "synthetic"])
def test_every_data_config_composes(layouts, name):
    cfg = layouts.compose(f"data={name}", "data.root=/nowhere" if name == "folder" else "seed=1")
    assert len(cfg.data.class_names) == cfg.data.num_classes
    assert cfg.data.palette is None or len(cfg.data.palette) == cfg.data.num_classes
    assert cfg.data.ignore_index == 255
