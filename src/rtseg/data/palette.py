"""Colour masks: RGB label images decoded to class indices through a palette.

Many datasets (CamVid's ``LabeledApproved_full``, most labelling tools) store labels as colours.
Each colour is packed into one 24-bit integer and looked up with ``np.searchsorted`` over the
sorted palette, so decoding a 360x480 mask costs a few milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rtseg.errors import DataError


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def read_palette_file(path: str | Path) -> tuple[list[list[int]], list[str | None]]:
    """Colours and names from ``r g b [name]`` lines (spaces or commas; ``#`` comments) or JSON.

    JSON: a list of ``[r, g, b]`` or of ``{"color": [r, g, b], "name": ...}``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"palette file not found: {path}")
    colours, names = [], []
    if path.suffix.lower() == ".json":
        try:
            entries = json.loads(path.read_text())
        except ValueError as e:
            raise DataError(f"palette file {path} is not valid JSON ({e})") from None
        for n, entry in enumerate(entries, 1):
            colour = entry.get("color") if isinstance(entry, dict) else entry
            names.append(entry.get("name") if isinstance(entry, dict) else None)
            colours.append(_colour(colour, f"{path} entry {n}"))
        return colours, names
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        parts = line.split(None, 3)
        if len(parts) < 3:
            raise DataError(f"{path}:{n}: expected 'r g b [name]', got {line!r}")
        colours.append(_colour(parts[:3], f"{path}:{n}"))
        names.append(parts[3].strip() if len(parts) > 3 else None)
    if not colours:
        raise DataError(f"palette file {path} lists no colours: expected 'r g b [name]' lines")
    return colours, names


def _colour(value, where: str) -> list[int]:
    try:
        rgb = [int(v) for v in value]
    except (TypeError, ValueError):
        rgb = []
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise DataError(f"{where}: expected a colour [r, g, b] with values 0-255, got {value!r}")
    return rgb


def resolve_palette(
    palette: Sequence[Sequence[int]] | None,
    palette_file: str | None,
    num_classes: int,
    class_names: Sequence[str] | None = None,
) -> list[list[int]] | None:
    """The class colours from ``data.palette_file`` (which wins) or ``data.palette``, checked.

    Names in the file must match ``data.class_names`` (the module, W&B and the run record read
    those), so a mismatch is an error that says what to set.
    """
    if not palette_file:
        if palette is None:
            return None
        colours, names, source = [_colour(c, "data.palette") for c in palette], [], "data.palette"
    else:
        colours, names = read_palette_file(palette_file)
        source = f"palette file {palette_file}"
    if len(colours) != num_classes:
        raise DataError(f"{source} has {len(colours)} colours but data.num_classes={num_classes}")
    if class_names is not None and names and all(names) and list(names) != list(class_names):
        raise DataError(
            f"palette file {palette_file} names the classes {list(names)} but data.class_names is "
            f"{list(class_names)}: set data.class_names=[{','.join(names)}]"
        )
    return colours


class ColourTable:
    """Maps the colours of an RGB mask to class indices; ``ignore_colors`` map to the ignore label."""

    def __init__(
        self,
        palette: Sequence[Sequence[int]],
        ignore_colors: Sequence[Sequence[int]] | None = None,
        ignore_index: int = 255,
    ):
        colours = [list(c) for c in palette] + [list(c) for c in ignore_colors or []]
        labels = list(range(len(palette))) + [ignore_index] * len(ignore_colors or [])
        keys = _pack(np.asarray(colours, dtype=np.uint8).reshape(-1, 3))
        if len(set(keys.tolist())) != len(keys):
            raise DataError(f"data.palette/ignore_colors repeat a colour: {colours}")
        order = np.argsort(keys)
        self.keys = keys[order]
        self.labels = np.asarray(labels, dtype=np.uint8)[order]

    def signature(self) -> str:
        """Identifies the mapping (part of the decode-check cache key)."""
        return f"{self.keys.tolist()}->{self.labels.tolist()}"

    def decode(self, rgb: np.ndarray, path: Path | str) -> np.ndarray:
        """HxWx3 uint8 colours -> HxW uint8 labels; an unlisted colour is a one-line DataError."""
        packed = _pack(rgb[..., :3])
        idx = np.searchsorted(self.keys, packed).clip(0, len(self.keys) - 1)
        known = self.keys[idx] == packed
        if not known.all():
            y, x = np.unravel_index(int(np.argmin(known)), known.shape)
            colour = [int(v) for v in rgb[y, x, :3]]
            raise DataError(
                f"mask {path} has colour {colour} at pixel (x={x}, y={y}) that is not in "
                "data.palette or data.ignore_colors"
            )
        return self.labels[idx]
