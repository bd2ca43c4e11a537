"""The dataset contract every reader follows: ``load(i)`` gives a uint8 RGB image and an integer mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from rtseg.data.palette import ColourTable
from rtseg.data.verify import decode_all
from rtseg.errors import DataError

IGNORE_INDEX = 255
ORIENTATION = 0x0112  # the EXIF tag: 1 upright, 2-4 flipped or turned 180, 5-8 turned a quarter


class SegmentationDataset(Dataset):
    """Applies one albumentations pipeline to image and mask together.

    Subclasses implement ``__len__`` and ``load``; the transform is set by the datamodule so that
    normalisation can follow the network's pretrained weights.
    """

    def __init__(self, transform=None):
        self.transform = transform
        # val/test scored at the label's own resolution: the transform (resizes only) sees the
        # image alone and the mask stays as stored (set by the datamodule, ``data.eval_native``)
        self.native_masks = False
        # a teacher's stored probabilities per image (``rtseg.data.soft_targets.SoftTargets``, set
        # on the training split for offline distillation): items become (image, mask, soft)
        self.soft_targets = None

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __getitem__(self, index: int):
        image, mask = self.load(index)
        if self.transform is None:
            return torch.from_numpy(image), torch.from_numpy(mask.astype(np.int64))
        if self.native_masks:
            return self.transform(image=image)["image"], torch.from_numpy(mask.astype(np.int64))
        if self.soft_targets is not None:
            out = self.transform(
                image=image, mask=mask, soft=self.soft_targets(index, image.shape[:2])
            )
            soft = torch.as_tensor(out["soft"]).permute(2, 0, 1)  # (K, H, W) uint8
            return out["image"], torch.as_tensor(out["mask"]).long(), soft
        out = self.transform(image=image, mask=mask)
        return out["image"], torch.as_tensor(out["mask"]).long()


def read_image(path: Path) -> np.ndarray:
    """Read an RGB image as HxWx3 uint8, upright as viewers show it (``upright``: its EXIF
    orientation applied), or raise a one-line DataError naming the file.

    Every photo the project reads comes through here: the API, the image-folder source and every
    dataset reader (masks do not: ``read_mask`` keeps label images as stored)."""
    try:
        with Image.open(path) as im:
            return rgb_array(upright(im), f"image {path}")
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except Image.DecompressionBombError as e:  # a header claiming billions of pixels
        raise DataError(f"cannot read image {path}: {e}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"cannot read image {path}: corrupt or not an image ({e})") from None


def exif_orientation(im: Image.Image) -> int:
    """The image's EXIF orientation (1..8; 1 when absent or unreadable). A PNG's is read only when
    its header holds it or the image is loaded (PIL otherwise decodes the whole file to look)."""
    if im.format == "PNG" and "exif" not in im.info and not _loaded(im):
        return 1
    try:
        value = int(im.getexif().get(ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a malformed EXIF block reads as no orientation, as viewers do
        return 1
    return value if 1 <= value <= 8 else 1


def _loaded(im: Image.Image) -> bool:
    """Whether the pixels are decoded (Pillow's ``im`` property asserts instead of returning None
    on an image that is not, or after ``verify``)."""
    try:
        return im.im is not None
    except AssertionError:
        return False


def upright(im: Image.Image) -> Image.Image:
    """The image as viewers display it: its EXIF orientation applied (``ImageOps.exif_transpose``),
    the image itself when it has none. The one way the project turns a photo upright."""
    im.load()  # a PNG's eXIf chunk may follow its pixels
    if exif_orientation(im) == 1:
        return im
    return ImageOps.exif_transpose(im)


def rgb_array(im: Image.Image, what: str = "image") -> np.ndarray:
    """HxWx3 uint8 RGB from a PIL image of any mode, keeping its values' meaning.

    PIL's ``convert("RGB")`` clips 16-bit and 32-bit grayscale (``I;16``, ``I``, ``F``) to 255, so a
    16-bit PNG came out white; such images are scaled to 8 bits by their bit depth instead, and
    values that fit no depth (negative, above 65535) are refused in one line.
    """
    if im.mode in ("RGB", "L", "P", "RGBA", "LA", "1", "CMYK", "YCbCr", "PA", "La", "HSV", "LAB"):
        return np.asarray(im.convert("RGB"))
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        arr = np.asarray(im).astype(np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise DataError(
                f"{what}: mode {im.mode} with values {arr.min():g}..{arr.max():g}: expected 8- or "
                "16-bit intensities (0..255 or 0..65535)"
            )
        sixteen = im.mode.startswith("I;16") or (arr.size and arr.max() > 255)
        gray = np.round(arr / 257.0) if sixteen else arr
        return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def read_mask(path: Path, colours: ColourTable | None = None) -> np.ndarray:
    """Read a label image as HxW integer indices.

    Palette PNGs give their indices, not colours; RGB masks are decoded through ``colours``
    (``data.palette``) when given.
    """
    try:
        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA") and colours is not None:
                return colours.decode(np.asarray(im), path)
            if im.mode not in ("L", "P", "I", "I;16", "1"):
                raise DataError(
                    f"mask {path} has mode {im.mode}: expected a single-channel label image "
                    "(grayscale or palette PNG with class indices), or set data.palette (or "
                    "data.palette_file) to decode colour masks"
                )
            return np.asarray(im)
    except FileNotFoundError:
        raise DataError(f"mask file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"cannot read mask {path}: corrupt or not an image ({e})") from None


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) as ``read_image`` gives it (upright: a quarter-turn EXIF orientation swaps
    the stored sides), from the file header only, so that verification stays cheap."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            # Pillow's TIFF reader turns a TIFF itself (its size is upright already)
            turned = exif_orientation(im) >= 5 and im.format != "TIFF"
            im.verify()
            return (w, h) if turned else (h, w)
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"cannot read image {path}: corrupt or not an image ({e})") from None


def size_mismatch(
    img_path: Path, img_hw: tuple[int, int], mask_path: Path, mask_hw: tuple[int, int]
) -> str:
    """The line for an image and a mask of different sizes; a mask that fits the image only as
    stored, before its EXIF quarter-turn (``upright``), is named as such."""
    line = (
        f"size mismatch: image {img_path} is {img_hw[0]}x{img_hw[1]} but mask {mask_path} is "
        f"{mask_hw[0]}x{mask_hw[1]}"
    )
    try:
        with Image.open(img_path) as im:
            im.load()  # a PNG's eXIf chunk may follow its pixels
            orientation = exif_orientation(im)
    except (OSError, SyntaxError):
        return line
    if orientation >= 5 and tuple(mask_hw) == tuple(img_hw)[::-1]:
        line += (
            f": the image has EXIF orientation {orientation}: it is read upright "
            f"({img_hw[0]}x{img_hw[1]}, as viewers show it) and the mask fits it only as stored, "
            "unrotated: turn the mask the same way (or store the image upright, without the tag)"
        )
    return line


class PairedFiles(SegmentationDataset):
    """Image/mask file pairs with an optional label lookup table (e.g. Cityscapes ids -> train ids)
    and an optional colour table for RGB masks.

    Every image and mask is decoded and checked at construction when ``verify`` is on (full decode,
    size, label range; in parallel, cached across runs, see ``rtseg.data.verify``), so that bad
    data stops the run before training with a message naming the file.

    When the decoded split fits in ``cache_mb`` (uint8 images + masks, estimated from the headers)
    it is decoded once here and kept in memory: PNG decoding then never competes with the training
    step for the cores, and DataLoader workers share the arrays (fork, copy-on-write).
    """

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        label_map: np.ndarray | None = None,
        verify: bool = True,
        transform=None,
        split: str | None = None,
        cache_mb: float = 0,
        colours: ColourTable | None = None,
    ):
        super().__init__(transform)
        self.colours = colours
        # the split actually read (a reader may fall back, e.g. test -> val), for the run record
        self.split = split
        # how the labelled frames were divided between train and val (a reader's val_protocol)
        self.protocol: str | None = None
        if not pairs:
            raise DataError("no image/mask pairs found")
        self.pairs = [(Path(i), Path(m)) for i, m in pairs]
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.label_map = label_map
        if verify:
            decode_all(
                self.pairs, self._check_pair, self._check_signature(), f"checking {split or 'data'}"
            )
        self._cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        if cache_mb and self._decoded_mb() <= cache_mb:
            self._cache = [
                self._read(i)
                for i in tqdm(
                    range(len(self.pairs)),
                    desc=f"decoding {split or 'images'} into memory",
                    unit="img",
                    leave=False,
                    disable=len(self.pairs) < 200,
                )
            ]

    def _check_pair(self, pair: tuple[Path, Path]) -> None:
        """Decode image and mask in full (a header check misses truncated files) and check labels."""
        img, msk = pair
        self._checked_mask(img, msk, read_image(img).shape[:2], remap=False)

    def _check_signature(self) -> str:
        """What ``_check_pair`` verifies besides the files: a change re-checks every pair."""
        lut = b"" if self.label_map is None else np.ascontiguousarray(self.label_map).tobytes()
        colours = self.colours.signature() if self.colours is not None else ""
        # "upright": images are read with their EXIF orientation applied (pairs checked before
        # that are checked again)
        return (
            f"{type(self).__name__}|{self.num_classes}|{self.ignore_index}|{lut.hex()}|{colours}"
            "|upright"
        )

    def _decoded_mb(self) -> float:
        total = 0
        for img, _ in self.pairs:
            h, w = image_size(img)
            total += h * w * 4  # RGB uint8 + a uint8 mask
        return total / 2**20

    def __len__(self) -> int:
        return len(self.pairs)

    def _checked_mask(
        self, img_path: Path, mask_path: Path, img_hw: tuple[int, int], remap: bool = True
    ) -> np.ndarray:
        mask = read_mask(mask_path, self.colours)
        if mask.shape[:2] != tuple(img_hw):
            raise DataError(size_mismatch(img_path, img_hw, mask_path, mask.shape[:2]))
        if mask.dtype.kind == "i" and mask.min() < 0:
            raise DataError(f"mask {mask_path} has negative labels: expected class indices >= 0")
        # the labels present, from a histogram (much cheaper than np.unique on full-size masks)
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=1))
        if self.label_map is not None:
            if present[-1] >= len(self.label_map):
                raise DataError(
                    f"mask {mask_path} has label {int(present[-1])} outside the label map"
                )
            present = self.label_map[present]
        bad = sorted({int(v) for v in present if v >= self.num_classes and v != self.ignore_index})
        if bad:
            raise DataError(
                f"mask {mask_path} has label(s) {bad} outside [0, {self.num_classes}) "
                f"and not the ignore label {self.ignore_index}"
            )
        if self.label_map is not None and remap:
            mask = self.label_map[mask]
        return mask.astype(np.uint8)

    @property
    def cached(self) -> bool:
        return self._cache is not None

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        img_path, mask_path = self.pairs[index]
        image = read_image(img_path)
        return image, self._checked_mask(img_path, mask_path, image.shape[:2])

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None:
            return self._cache[index]
        return self._read(index)


def require_dir(path: Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{what} folder not found: {path}")
    return path
