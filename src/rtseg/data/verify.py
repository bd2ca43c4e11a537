"""Decode every file of a split before training, in parallel, remembering what already passed.

A header check misses truncated JPEGs (and any damage past the header): only a full decode finds
them, and a bad file should stop the run before epoch 0, not in the middle of it. Files that passed
are remembered in a JSON cache keyed by path, size and mtime (plus what the check checks: class
count, label map, colours), so a rerun on unchanged data costs one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from rtseg.utils.paths import write_atomic

CACHE_NAME = "decoded.json"


def cache_dir() -> Path:
    """``$RTSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rtseg`` (``~/.cache/rtseg``)."""
    if os.environ.get("RTSEG_CACHE_DIR"):
        return Path(os.environ["RTSEG_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rtseg"


def _key(paths: Sequence[Path], check: str) -> str:
    parts = [check]
    for p in paths:
        st = p.stat()
        parts.append(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def _load(path: Path) -> set[str]:
    try:
        return set(json.loads(path.read_text()))
    except (OSError, ValueError):
        return set()


def _save(path: Path, keys: set[str]) -> None:
    """Merge with what another process may have written meanwhile; atomic replace."""
    try:
        write_atomic(path, json.dumps(sorted(_load(path) | keys)))
    except OSError:
        pass  # a read-only home only costs the next run another decode


def decode_all(
    items: Sequence[Sequence[Path]],
    check: Callable[[Sequence[Path]], object],
    signature: str,
    desc: str = "decoding",
    workers: int | None = None,
) -> None:
    """Run ``check`` (which decodes and raises ``DataError``) on every item not already known good.

    Items are tuples of files (image, mask). ``signature`` names what ``check`` verifies, so that a
    change of class count or label map re-checks everything. Decoders (PIL, cv2) release the GIL:
    a thread pool uses every core. The first bad file (in item order) is raised.
    """
    cache = cache_dir() / CACHE_NAME
    known = _load(cache)
    keys = [_key([Path(p) for p in item], signature) for item in items]
    todo = [(item, k) for item, k in zip(items, keys, strict=True) if k not in known]
    if not todo:
        return
    workers = workers or min(8, os.cpu_count() or 1)
    passed: set[str] = set()
    pool = ThreadPoolExecutor(workers)
    try:
        results = pool.map(lambda job: check(job[0]), todo)
        bar = tqdm(
            results, total=len(todo), desc=desc, unit="pair", leave=False, disable=len(todo) < 50
        )
        for (_, k), _result in zip(todo, bar, strict=True):
            passed.add(k)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after a bad file, skip the queued rest
        if passed:
            _save(cache, passed)
