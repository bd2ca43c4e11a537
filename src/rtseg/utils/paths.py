"""Where rtseg's files are: the package, the checkout, the configs; output paths checked; file hashes."""

from __future__ import annotations

import os
from pathlib import Path

from rtseg.errors import RtsegError

PACKAGE_DIR = Path(__file__).resolve().parents[1]


# the checkout's root (src/rtseg/ -> .); meaningless for an installed wheel, see CHECKOUT
REPO_ROOT = PACKAGE_DIR.parents[1]


CHECKOUT = REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() else None


def _conf_dir() -> Path:
    """``RTSEG_CONF_DIR``, else the configs a wheel ships (``rtseg/conf``), else the checkout's ``conf/``."""
    if os.environ.get("RTSEG_CONF_DIR"):
        return Path(os.environ["RTSEG_CONF_DIR"]).resolve()
    shipped = PACKAGE_DIR / "conf"
    if (shipped / "train.yaml").is_file():
        return shipped
    return REPO_ROOT / "conf"


CONF_DIR = _conf_dir()


def refuse_path_under_file(path: str | Path, key: str, folder: bool = False) -> None:
    """One line instead of a deep mkdir traceback when an output path lies below an existing file."""
    p = Path(path).expanduser().absolute()
    for candidate in ([p] if folder else []) + list(p.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise RtsegError(f"{key}={path}: {candidate} is a file, expected a folder there")
            return


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MB blocks (checkpoints, artifacts and shipped weights)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
