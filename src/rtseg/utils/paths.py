"""Where rtseg's files are: the package, the checkout, the configs; output paths checked; file hashes;
files written atomically."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to, renamed onto ``path`` when the block succeeds.

    Readers never see half a file, and a write that fails (disk full, Ctrl-C, a crash) removes its
    temporary file and leaves whatever was at ``path`` untouched. The temporary name keeps the
    suffix, so writers that pick a format by extension (PyAV, OpenCV, matplotlib) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes, durable: bool = True) -> Path:
    """Write text or bytes to ``path`` through ``atomic_path``; ``durable``: on disk before the
    rename (records, caches), off for per-frame images where an fsync each would cost frames."""
    with atomic_path(path) as tmp, open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` through ``atomic_path``: ``dst`` is the old file or the whole new one."""
    with atomic_path(dst) as tmp:
        shutil.copy2(src, tmp)
    return Path(dst)
