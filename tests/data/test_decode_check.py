"""Every file of every split is decoded before training; a truncated file stops the run, named."""

from __future__ import annotations

import shutil

import pytest
from hydra.utils import instantiate

from rtseg.data import base
from rtseg.data.folder import folder
from rtseg.errors import DataError
from rtseg.utils.cli import user_errors_as_one_line


def _three_splits(layouts, root, image_suffix=".png"):
    """train/val/test folders of 3 pairs each, images saved with ``image_suffix``."""
    layouts.folder(root, per_split=True)
    shutil.copytree(root / "val", root / "test")
    if image_suffix != ".png":
        for img in root.glob("*/images/*.png"):
            layouts.save_rgb(img.with_suffix(image_suffix), layouts.rgb(7))
            img.unlink()
    return root


def _truncate(path, keep=0.6):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _datamodule(layouts, root):
    cfg = layouts.compose(
        "data=folder", f"data.root={root}", "data.num_classes=3", "data.class_names=[a,b,c]",
        "data.input_size=[32,48]",
    )  # fmt: skip
    return instantiate(cfg.data, _convert_="all")


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize("kind", ["jpeg-image", "png-image", "png-mask"])
def test_truncated_file_stops_fit_setup_with_one_line(layouts, tmp_path, capsys, split, kind):
    suffix = ".jpg" if kind == "jpeg-image" else ".png"
    root = _three_splits(layouts, tmp_path / "mine", suffix)
    sub = "masks" if kind == "png-mask" else "images"
    victim = sorted((root / split / sub).iterdir())[1]
    _truncate(victim)
    if kind == "jpeg-image":  # the header check passes it: only a full decode finds the damage
        assert base.image_size(victim) == (layouts.H, layouts.W)
    dm = _datamodule(layouts, root)

    with pytest.raises(SystemExit) as exit_info:
        user_errors_as_one_line(dm.setup)("fit")  # what Trainer.fit calls before epoch 0
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: cannot read") and str(victim) in err, err


def test_checked_pairs_are_cached_by_path_size_and_mtime(layouts, tmp_path, monkeypatch):
    root = _three_splits(layouts, tmp_path / "mine", ".jpg")
    calls = []
    real = base.read_image
    monkeypatch.setattr(base, "read_image", lambda p: calls.append(p) or real(p))
    folder(str(root), 3, split="val")
    assert len(calls) == 3
    calls.clear()
    folder(str(root), 3, split="val")
    assert calls == []  # unchanged files: nothing decoded again
    victim = sorted((root / "val" / "images").iterdir())[0]
    _truncate(victim)  # new size and mtime: checked again, and caught
    with pytest.raises(DataError, match=f"cannot read image {victim}"):
        folder(str(root), 3, split="val")
    assert calls == [victim]
    # a different check (class count) re-checks everything
    calls.clear()
    folder(str(root), 4, split="train")
    folder(str(root), 3, split="train")
    assert len(calls) == 6
