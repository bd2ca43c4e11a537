"""Colour (RGB) masks decoded through a palette from the config or a palette file."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from rtseg.data.folder import folder
from rtseg.data.palette import ColourTable
from rtseg.errors import DataError
from rtseg.utils.cli import user_errors_as_one_line

PALETTE = [[128, 64, 128], [70, 70, 70], [0, 0, 142]]
VOID = [0, 0, 0]


def _write_colour_folder(layouts, root, count=6):
    """images/ + RGB masks/ painted with PALETTE (VOID where the label is 255); returns the labels."""
    table = np.array(PALETTE + [VOID], dtype=np.uint8)
    truth = {}
    for n in range(count):
        idx = layouts.labels(100 + n, [0, 1, 2, 255])
        layouts.save_rgb(root / "images" / f"f{n}.png", layouts.rgb(n))
        layouts.save_rgb(root / "masks" / f"f{n}.png", table[np.where(idx == 255, 3, idx)])
        truth[f"f{n}"] = idx
    return truth


def _check(ds, truth):
    assert len(ds) > 0
    for i, (img, _) in enumerate(ds.pairs):
        assert np.array_equal(ds.load(i)[1], truth[img.stem])


def test_palette_in_config_decodes_colour_masks(layouts, tmp_path):
    root = tmp_path / "mine"
    truth = _write_colour_folder(layouts, root)
    cfg = layouts.compose(
        "data=folder", f"data.root={root}", "data.num_classes=3", "data.class_names=[road,building,car]",
        f"data.palette={PALETTE}", f"data.ignore_colors=[{VOID}]", "data.input_size=[32,48]",
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")
    for split in ("train", "val"):
        _check(dm.dataset(split), truth)
    _, mask = dm.dataset("train")[0]
    assert set(mask.unique().tolist()) <= {0, 1, 2, 255}


@pytest.mark.parametrize("fmt", ["txt", "csv", "json"])
def test_palette_file(layouts, tmp_path, capsys, fmt):
    root = tmp_path / "mine"
    truth = _write_colour_folder(layouts, root)
    names = ["road", "building", "car"]
    path = tmp_path / f"palette.{fmt}"
    if fmt == "json":
        path.write_text(
            json.dumps([{"color": c, "name": n} for c, n in zip(PALETTE, names, strict=True)])
        )
    else:
        sep = "," if fmt == "csv" else " "
        lines = ["# r g b name"] + [
            sep.join([*map(str, c), n]) for c, n in zip(PALETTE, names, strict=True)
        ]
        path.write_text("\n".join(lines) + "\n")
    ds = folder(str(root), 3, "train", palette_file=str(path), ignore_colors=[VOID])
    _check(ds, truth)
    cfg = layouts.compose(
        "data=folder", f"data.root={root}", "data.num_classes=3", "data.class_names=[road,building,car]",
        f"data.palette_file={path}", f"data.ignore_colors=[{VOID}]",
    )  # fmt: skip
    assert instantiate(cfg.data, _convert_="all").meta()["palette"] == PALETTE
    wrong = layouts.compose(
        "data=folder", f"data.root={root}", "data.num_classes=3", "data.class_names=[a,b,c]",
        f"data.palette_file={path}",
    )  # fmt: skip
    with pytest.raises(SystemExit):
        user_errors_as_one_line(instantiate)(wrong.data, _convert_="all")
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: palette file {path} names the classes") and err.endswith(
        "set data.class_names=[road,building,car]"
    ), err


def test_unknown_colour_names_file_colour_and_pixel(layouts, tmp_path, capsys):
    root = tmp_path / "mine"
    _write_colour_folder(layouts, root)
    victim = root / "masks" / "f2.png"
    mask = np.array(Image.open(victim))
    mask[5, 17] = [1, 2, 3]
    mask[30, 40] = [1, 2, 3]
    layouts.save_rgb(victim, mask)
    split = next(s for s in ("train", "val") if any(victim == m for _, m in folder(str(root), 3, s, verify=False, palette=PALETTE, ignore_colors=[VOID]).pairs))  # fmt: skip
    cfg = layouts.compose(
        "data=folder", f"data.root={root}", "data.num_classes=3", "data.class_names=[a,b,c]",
        f"data.palette={PALETTE}", f"data.ignore_colors=[{VOID}]",
    )  # fmt: skip
    dm = instantiate(cfg.data, _convert_="all")
    with pytest.raises(SystemExit) as exit_info:
        user_errors_as_one_line(dm.dataset)(split)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: mask {victim} has colour [1, 2, 3] at pixel (x=17, y=5) that is not in "
        "data.palette or data.ignore_colors"
    )
    # without ignore_colors, void is an unknown colour too
    with pytest.raises(DataError, match=r"colour \[0, 0, 0\]"):
        folder(str(root), 3, "train", palette=PALETTE)


def test_colour_table_lookup_is_exact():
    table = ColourTable(PALETTE, [VOID], ignore_index=255)
    rgb = np.array([[PALETTE[2], VOID, PALETTE[0], PALETTE[1]]], dtype=np.uint8)
    assert table.decode(rgb, "x.png").tolist() == [[2, 255, 0, 1]]
    with pytest.raises(DataError, match="repeat a colour"):
        ColourTable(PALETTE, [PALETTE[0]])


def test_bad_palette_values_are_one_line(tmp_path, layouts):
    root = tmp_path / "mine"
    _write_colour_folder(layouts, root, count=2)
    with pytest.raises(DataError, match=r"data.palette: expected a colour \[r, g, b\] with values 0-255, got \[300, 0, 0\]"):  # fmt: skip
        folder(str(root), 2, palette=[[300, 0, 0], [1, 2, 3]])
    with pytest.raises(DataError, match="data.palette has 2 colours but data.num_classes=3"):
        folder(str(root), 3, palette=[[0, 0, 1], [1, 2, 3]])
    bad = tmp_path / "p.txt"
    bad.write_text("1 2\n")
    with pytest.raises(DataError, match=re.escape(f"{bad}:1: expected 'r g b [name]'")):
        folder(str(root), 3, palette_file=str(bad))
