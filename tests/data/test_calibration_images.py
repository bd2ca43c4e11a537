"""Calibration reads the few images it needs, not the training cache of a whole split."""

from __future__ import annotations

from hydra.utils import instantiate

from rtseg.infer.calibration import DatasetImages

from .conftest import compose_data, write_camvid


def test_calibration_images_do_not_decode_the_whole_split_into_memory(tmp_path):
    root = write_camvid(tmp_path / "camvid", counts={"train": 6, "val": 2})
    cfg = compose_data("data=camvid", f"data.root={root}").data
    assert cfg.datasets.train.cache_mb > 0  # the training config caches the split ...
    trained = instantiate(cfg, _convert_="all")
    assert trained.dataset("train")._cache is not None

    meta = {"dataset": "camvid", "num_classes": 11, "mean": [0.5] * 3, "std": [0.5] * 3}
    images = DatasetImages(cfg, meta)
    pairs = images.pairs("train", 2, (32, 48))
    assert len(pairs) == 2 and pairs[0][0].shape == (1, 3, 32, 48)
    # ... calibration reads its two images from disk
    assert images.datamodule.dataset("train")._cache is None
