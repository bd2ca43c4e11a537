"""The images of a folder or a glob pattern as a finite frame source."""

from __future__ import annotations

import glob
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rtseg.data.base import read_image
from rtseg.errors import DataError, SourceError
from rtseg.realtime.sources import Source

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class ImageFolderSource(Source):
    """The images of a folder (sorted by name) or of a glob pattern, as a finite stream."""

    def __init__(
        self,
        spec: str,
        max_frames: int | None = None,
        fps: float = 10.0,
        stop_event: threading.Event | None = None,
    ):
        super().__init__(max_frames, stop_event)
        self.spec, self.name, self.fps = spec, str(spec), fps
        path = Path(spec).expanduser()
        files = (
            sorted(path.iterdir())
            if path.is_dir()
            else sorted(Path(p) for p in glob.glob(str(path)))
        )
        self.files = [f for f in files if f.suffix.lower() in IMAGE_EXTS and f.is_file()]
        if not self.files:
            raise SourceError(
                f"cannot open source {spec}: no images ({', '.join(sorted(IMAGE_EXTS))}) found"
            )
        self.frame_count = len(self.files)

    def frames(self) -> Iterator[np.ndarray | None]:
        """BGR frames read as the datasets and the API read photos (``read_image``: upright, their
        EXIF orientation applied); an unreadable file is a corrupt frame (None)."""
        for f in self.files:
            try:
                rgb = read_image(f)
            except DataError:
                yield None
                continue
            yield np.ascontiguousarray(rgb[..., ::-1])

    def reopen(self) -> ImageFolderSource:
        return ImageFolderSource(self.spec, self.max_frames, self.fps)
