"""The artifact cache: what ``auto`` measured, kept as files, so realtime runs exactly that.

An artifact is the file a backend runs (an exported or quantised ONNX file, with its sidecar) or,
for in-process torch backends, the weights themselves. ``<cache>/auto.json`` maps (CPU, model,
input size, batch, threads) to the chosen artifact with its sha256, the weights hash, the runtime
versions and the timing trials; an entry whose file is gone or whose hashes or versions differ is
measured again. Files are stored by content under ``<cache>/artifacts/<sha256[:16]>/`` (the
sha256's first 16 hex digits), so a later export can never change a file that an entry points to.
Never in a user's export folder.

The cache is trusted storage: an entry resolves only inside ``<cache>/artifacts/``, a file's sha256
is checked on every use, its sidecar must describe this run's model (weights hash, class count,
input size and batch: an entry edited to another model's file is measured again, not run), and a
damaged, truncated or missing file is never run: the same backend is exported again and, when the fresh file has the
recorded sha256, copied over the bad one (atomically: every write here goes to a temporary name
first). A lock file serialises measuring, so concurrent runs on one cache measure once and share it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from rtseg.errors import BackendUnavailable, ExportError
from rtseg.infer.onnx import int8_recipe
from rtseg.infer.sidecar import read_sidecar, sidecar_path, update_sidecar
from rtseg.utils.machine import cpu_name
from rtseg.utils.paths import copy_atomic, file_sha256, write_atomic

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent runs may both measure
    fcntl = None

log = logging.getLogger("rtseg.infer")


def default_cache_dir() -> Path:
    return Path(os.environ.get("RTSEG_LOG_DIR", "logs")) / "bench"


def weights_hash(net: nn.Module) -> str:
    """sha256 of the state dict (names and bytes): the same weights give the same hash in any process."""
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def model_key(net: nn.Module, weights: str | None = None) -> str:
    """Architecture + weights hash (pass ``weights`` when already computed: hashing reads every tensor)."""
    return f"{type(net).__name__}-{(weights or weights_hash(net))[:12]}"


def runtime_versions() -> dict:
    """torch / onnxruntime / openvino versions and how int8 is quantised here: an artifact measured
    under others is measured again."""
    out = {"torch": torch.__version__, "int8": int8_recipe()}
    for mod in ("onnxruntime", "openvino"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


class ArtifactCache:
    """``auto.json`` (the choices) and ``artifacts/`` (the files they point to) under ``root``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root or default_cache_dir())
        self.index = self.root / "auto.json"

    def holds(self, path: str | Path) -> bool:
        """Whether ``path`` lies inside this cache's ``artifacts/`` (symlinks resolved): an entry
        edited to point anywhere else is measured again, never run or repaired in place."""
        try:
            Path(path).resolve().relative_to((self.root / "artifacts").resolve())
        except (ValueError, OSError):
            return False
        return True

    @staticmethod
    def key(model: str, input_size, batch_size: int, threads: int) -> str:
        return f"{cpu_name()}|{model}|{input_size[0]}x{input_size[1]}|b{batch_size}|t{threads}"

    def entry(self, key: str) -> dict | None:
        """The recorded choice for ``key`` as stored, unchecked (``lookup`` checks it)."""
        entry = self._read().get(key)
        return entry if entry and entry.get("versions") == runtime_versions() else None

    def lookup(self, key: str, weights: str, expect: dict | None = None) -> tuple[dict | None, str]:
        """(entry, "") when it is still valid, else (None, why it must be measured again).
        ``expect``: sidecar fields the artifact must record (``input_size``, ``batch_size``,
        ``num_classes``; None values are not compared), besides this run's weights hash."""
        entry = self._read().get(key)
        if entry is None:
            return None, "no cached choice"
        if entry.get("weights_hash") != weights:
            return None, "the weights changed"
        if entry.get("versions") != runtime_versions():
            return (
                None,
                f"runtime versions changed ({entry.get('versions')} -> {runtime_versions()})",
            )
        path = entry.get("artifact")
        if path:
            if not self.holds(path):
                return None, f"artifact {path} is outside {self.root / 'artifacts'} (not run)"
            if not Path(path).is_file():
                return None, f"artifact {path} is missing"
            if file_sha256(Path(path)) != entry.get("sha256"):
                return None, f"artifact {path} changed (sha256)"
            wrong = sidecar_mismatch(Path(path), {"weights_hash": weights, **(expect or {})})
            if wrong:
                return None, wrong
        return entry, ""

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while a run looks up, measures and stores: a second run on the same cache waits,
        then finds the first one's entry instead of measuring under its load."""
        if fcntl is None:
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info(
                    "auto: another run is measuring into %s: waiting for its result", self.root
                )
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def repair(self, key: str, weights: str, build: Callable[[str, Path], object]) -> dict | None:
        """The entry for ``key`` when only its file is bad (damaged, truncated, missing): ``build(name,
        folder)`` exports the same backend again and, when that file has the recorded sha256, it
        replaces the bad one and the entry stands without measuring. None when it cannot be rebuilt
        identically (then measuring again stores a good file)."""
        entry = self._read().get(key)
        if (
            not entry
            or not entry.get("artifact")
            or entry.get("weights_hash") != weights
            or entry.get("versions") != runtime_versions()
        ):
            return None
        path = Path(entry["artifact"])
        if not self.holds(path):  # an entry that points elsewhere is never written through
            return None
        with tempfile.TemporaryDirectory(prefix="rtseg-repair-") as tmp:
            try:
                fresh = build(entry["backend"], Path(tmp))
            except BackendUnavailable as e:
                log.warning("auto: cannot export %s again (%s)", entry["backend"], e)
                return None
            if fresh.path is None or file_sha256(fresh.path) != entry.get("sha256"):
                return None
            copy_atomic(fresh.path, path)
        log.warning(
            "auto: cached artifact %s was damaged or missing: replaced by a fresh export with the "
            "recorded sha256 (not run, not measured again)",
            path,
        )
        return entry

    def store(self, key: str, entry: dict, backend) -> dict:
        """Copy the backend's file (and sidecar) in by content, record it, and return the entry.

        A file already there is kept only when its sha256 is right: a damaged one is replaced."""
        entry = {**entry, "artifact": None, "sha256": None}
        if backend.path is not None:
            sha = file_sha256(backend.path)
            folder = self.root / "artifacts" / sha[:16]
            dst = folder / Path(backend.path).name
            if not dst.is_file() or file_sha256(dst) != sha:
                copy_atomic(backend.path, dst)
            src_side, dst_side = sidecar_path(backend.path), sidecar_path(dst)
            if src_side.is_file():
                copy_atomic(src_side, dst_side)
            else:  # written afresh below, never merged into a file that may be damaged
                dst_side.unlink(missing_ok=True)
            update_sidecar(
                dst,
                input_size=entry["input_size"],
                batch_size=entry["batch_size"],
                num_classes=entry.get("num_classes"),
                precision=backend.precision,
                sha256=sha,
                weights_hash=entry["weights_hash"],
                versions=entry["versions"],
            )
            entry.update(artifact=str(dst.resolve()), sha256=sha)
        index = self._read()
        index[key] = {**entry, "time": time.time()}
        self._write(index)
        return entry

    def _read(self) -> dict:
        try:
            return json.loads(self.index.read_text())
        except (OSError, ValueError):
            return {}

    def _write(self, index: dict) -> None:
        write_atomic(self.index, json.dumps(index, indent=2))


def sidecar_mismatch(path: Path, expect: dict) -> str | None:
    """Why a cached artifact's sidecar does not describe the model this run expects, or None.

    The entry's path and sha256 only say the file is the one the entry names: an entry edited (both
    together) to another model's file passed them and died in ONNX Runtime with INVALID_ARGUMENT.
    The sidecar, bound to the file by its sha256 and to itself by its digest, says which weights,
    classes and input size the file was made for."""
    try:
        recorded = read_sidecar(path)
    except ExportError as e:
        return f"artifact {path}: {e} (not run)"
    for field, want in expect.items():
        if want is not None and recorded.get(field) != want:
            return (
                f"artifact {path} was made for {field}={recorded.get(field)}, not {want}: "
                "another model's file (not run)"
            )
    return None


def record_int8(backend, quality: dict) -> None:
    """Write an int8 file's calibration and measured quality (per runtime) into its sidecar."""
    if backend.path is None:
        return
    side = sidecar_path(backend.path)
    known = json.loads(side.read_text()).get("quality", {}) if side.is_file() else {}
    update_sidecar(
        backend.path,
        precision="int8",
        # quantised by this process (it has a calibration): by this machine's recipe
        quantization=int8_recipe() if backend.calibration else None,
        calibration=backend.calibration,
        quality={**known, backend.name: quality},
    )
