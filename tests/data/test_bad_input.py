"""Bad data stops the run with one line that names the file or folder and says what was expected."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from rtseg.data.camvid import camvid
from rtseg.data.cityscapes import cityscapes
from rtseg.data.folder import folder
from rtseg.data.voc import voc
from rtseg.errors import DataError
from rtseg.utils.cli import user_errors_as_one_line
from rtseg.utils.paths import REPO_ROOT

GARBAGE = b"\x89PNG-not-really" + bytes(range(256)) * 4


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


def _split_of(root: Path, path: Path) -> str:
    """Which hash split of a single-folder dataset holds ``path`` (image or mask)."""
    return next(
        s
        for s in ("train", "val")
        if any(path in p for p in folder(str(root), 3, s, verify=False).pairs)
    )


def _raises(fn, *patterns: str) -> str:
    with pytest.raises(DataError) as err:
        fn()
    line = _one_line(err)
    for p in patterns:
        assert re.search(p, line), f"{p!r} not in {line!r}"
    return line


# --- missing folders --------------------------------------------------------------------------


def test_missing_root_folder(tmp_path):
    gone = tmp_path / "nowhere"
    _raises(lambda: folder(str(gone), 2), "folder not found", re.escape(str(gone)))
    _raises(lambda: voc(str(gone)), "VOC root", re.escape(str(gone)))
    _raises(lambda: cityscapes(str(gone)), "Cityscapes root", re.escape(str(gone)))
    _raises(lambda: camvid(str(gone)), "CamVid root", re.escape(str(gone)))


def test_empty_folder_root(tmp_path):
    _raises(
        lambda: folder(str(tmp_path), 2),
        f"no images/ folder in {re.escape(str(tmp_path))}: expected",
    )


def test_missing_subfolders(tmp_path, layouts):
    root = layouts.voc(tmp_path / "voc")
    (root / "SegmentationClass").rename(root / "Segmentation")
    _raises(
        lambda: voc(str(root)),
        "VOC mask folder not found",
        re.escape(str(root / "SegmentationClass")),
    )
    (root / "ImageSets" / "Segmentation" / "val.txt").unlink()
    (root / "Segmentation").rename(root / "SegmentationClass")
    _raises(
        lambda: voc(str(root), "val"),
        "split list not found",
        re.escape(str(root / "ImageSets")),
        "image id",
    )

    cs = layouts.cityscapes(tmp_path / "cs", splits=("train",))
    _raises(
        lambda: cityscapes(str(cs), "val"),
        "Cityscapes val image",
        re.escape(str(cs / "leftImg8bit" / "val")),
    )

    cv = layouts.camvid(tmp_path / "camvid", counts={"train": 2})
    for f in (cv / "trainannot").iterdir():
        f.unlink()
    (cv / "trainannot").rmdir()
    _raises(
        lambda: camvid(str(cv)),
        "CamVid train annotation folder not found",
        re.escape(str(cv / "trainannot")),
    )


# --- unpaired files ---------------------------------------------------------------------------


def test_image_without_mask(folder_root, layouts):
    extra = layouts.save_rgb(folder_root / "images" / "lonely.png", layouts.rgb(1))
    _raises(
        lambda: folder(str(folder_root), 3), f"image {re.escape(str(extra))} has no mask", "masks"
    )


def test_mask_without_image(folder_root, layouts):
    extra = layouts.save_mask(folder_root / "masks" / "orphan.png", layouts.labels(1, [0, 1]))
    _raises(
        lambda: folder(str(folder_root), 3), f"mask {re.escape(str(extra))} has no image", "images"
    )


def test_unpaired_camvid_without_lists(tmp_path, layouts):
    root = layouts.camvid(tmp_path / "camvid", lists=False, counts={"train": 3})
    victim = sorted((root / "trainannot").iterdir())[1]
    victim.unlink()
    _raises(
        lambda: camvid(str(root)),
        f"image .*{victim.name} has no mask",
        re.escape(str(root / "trainannot")),
    )


def test_unpaired_voc(voc_root):
    (voc_root / "SegmentationClass" / "2007_000039.png").unlink()
    _raises(
        lambda: voc(str(voc_root)),
        re.escape(str(voc_root / "SegmentationClass" / "2007_000039.png")),
        "not found",
    )
    (voc_root / "JPEGImages" / "2009_000001.jpg").unlink()
    _raises(
        lambda: voc(str(voc_root), "val"),
        re.escape(str(voc_root / "JPEGImages" / "2009_000001.jpg")),
        "listed in",
    )


def test_unpaired_cityscapes(cityscapes_root):
    label = (
        cityscapes_root / "gtFine" / "train" / "bochum" / "bochum_000000_000313_gtFine_labelIds.png"
    )
    label.rename(label.with_name("bochum_000000_000314_gtFine_labelIds.png"))
    line = _raises(
        lambda: cityscapes(str(cityscapes_root)),
        "bochum_000000_000313_leftImg8bit.png has no label",
    )
    assert str(label) in line
    image = (
        cityscapes_root / "leftImg8bit" / "val" / "aachen" / "aachen_000001_000019_leftImg8bit.png"
    )
    image.unlink()
    _raises(
        lambda: cityscapes(str(cityscapes_root), "val"),
        "aachen_000001_000019_gtFine_labelIds.png has no image",
    )


# --- unreadable files, size and label checks --------------------------------------------------


def test_corrupt_image(folder_root):
    victim = folder_root / "images" / "frame_004.png"
    victim.write_bytes(GARBAGE)
    _raises(
        lambda: folder(str(folder_root), 3, split=_split_of(folder_root, victim)),
        f"cannot read image {re.escape(str(victim))}",
        "corrupt",
    )


def test_corrupt_mask(voc_root):
    victim = voc_root / "SegmentationClass" / "2007_000033.png"
    victim.write_bytes(GARBAGE)
    _raises(
        lambda: voc(str(voc_root), "val"), f"cannot read mask {re.escape(str(victim))}", "corrupt"
    )


def test_colour_mask_is_not_a_label_image(folder_root, layouts):
    victim = layouts.save_rgb(folder_root / "masks" / "frame_000.png", layouts.rgb(3))
    _raises(
        lambda: folder(str(folder_root), 3, split=_split_of(folder_root, victim)),
        re.escape(str(victim)),
        "mode RGB",
        "single-channel",
    )


def test_size_mismatch(cityscapes_root, layouts):
    victim = (
        cityscapes_root / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    )
    layouts.save_mask(victim, np.zeros((16, 48), np.uint8))
    _raises(
        lambda: cityscapes(str(cityscapes_root), "val"),
        "size mismatch",
        "is 32x48",
        f"{re.escape(str(victim))} is 16x48",
    )


@pytest.mark.parametrize("bad", [3, 254])
def test_label_outside_the_classes(folder_root, layouts, bad):
    victim = folder_root / "masks" / "frame_002.png"
    labels = layouts.labels(7, [0, 1, 255])
    labels[0, 0] = bad
    layouts.save_mask(victim, labels)
    split = _split_of(folder_root, victim)
    with pytest.raises(DataError) as err:
        folder(str(folder_root), 3, split=split)
    assert (
        _one_line(err)
        == f"mask {victim} has label(s) [{bad}] outside [0, 3) and not the ignore label 255"
    )
    # without verification the same check runs when the sample is loaded
    lazy = folder(str(folder_root), 3, split=split, verify=False)
    with pytest.raises(DataError, match=re.escape(str(victim))):
        lazy.load([m for _, m in lazy.pairs].index(victim))


def test_voc_label_outside_21_classes(voc_root, layouts):
    victim = voc_root / "SegmentationClass" / "2008_000002.png"
    labels = layouts.labels(2, range(21))
    labels[5, 5] = 21
    layouts.save_mask(victim, labels, palette=[0, 0, 0] * 256)
    _raises(
        lambda: voc(str(voc_root)),
        f"mask {re.escape(str(victim))} has label\\(s\\) \\[21\\] outside \\[0, 21\\)",
    )


# --- through the entrypoints: one line, no stack trace ----------------------------------------


def test_error_in_a_dataloader_worker_is_one_line(folder_root, layouts, capsys):
    victim = folder_root / "images" / "frame_001.png"
    victim.write_bytes(GARBAGE)
    cfg = layouts.compose(
        "data=folder", f"data.root={folder_root}", "data.num_classes=3", "data.class_names=[a,b,c]",
        "data.verify=false", "data.num_workers=1", "data.batch_size=20", "data.val_batch_size=20",
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")

    @user_errors_as_one_line
    def read_everything():
        for loader in (dm.train_dataloader(), dm.val_dataloader()):
            for _ in loader:
                pass

    with pytest.raises(SystemExit) as exit_info:
        read_everything()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read image") and str(victim) in err and "\n" not in err, (
        err
    )


def test_unset_data_root_is_one_line(layouts, capsys):
    cfg = layouts.compose("data=folder")

    @user_errors_as_one_line
    def build():
        instantiate(cfg.data, _convert_="all")

    with pytest.raises(SystemExit) as exit_info:
        build()
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: config value data.root is not set (???): give it, e.g. data.root=..."
    )


def _cli_error(tmp_path: Path, *overrides: str) -> tuple[int, list[str]]:
    env = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "offline",
        "RTSEG_LOG_DIR": str(tmp_path / "logs"),
    }
    exe = REPO_ROOT / ".venv" / "bin" / "rtseg-train"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "rtseg.training.train"]
    proc = subprocess.run(
        [*cmd, *overrides, f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, lines


def test_cli_empty_folder_root_is_one_line(tmp_path):
    empty = tmp_path / "EMPTY_DIR"
    empty.mkdir()
    code, lines = _cli_error(tmp_path, "data=folder", f"data.root={empty}")
    assert code != 0
    assert lines[-1].startswith("error: ") and str(empty) in lines[-1], lines
    assert sum(ln.startswith("error: ") for ln in lines) == 1


@pytest.mark.slow
def test_cli_worker_error_is_one_line(tmp_path, folder_root):
    victim = folder_root / "images" / "frame_001.png"
    victim.write_bytes(GARBAGE)
    code, lines = _cli_error(
        tmp_path, "data=folder", f"data.root={folder_root}", "data.num_classes=3", "data.class_names=[a,b,c]",
        "data.verify=false", "data.num_workers=1", "data.input_size=[32,32]", "trainer.max_epochs=1", "logger=none",
    )  # fmt: skip
    assert code == 2
    assert lines[-1].startswith("error: cannot read image") and str(victim) in lines[-1], lines
