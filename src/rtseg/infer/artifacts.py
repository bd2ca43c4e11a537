"""The artifact cache: what ``auto`` measured, kept as files, so realtime runs exactly that.

An artifact is the file a backend runs (an exported or quantised ONNX file, with its sidecar) or,
for in-process torch backends, the weights themselves. ``<cache>/auto.json`` maps (CPU, model,
input size, batch, threads) to the chosen artifact with its sha256, the weights hash, the runtime
versions and the timing trials; an entry whose file is gone or whose hashes or versions differ is
measured again. Files are stored by content under ``<cache>/artifacts/<sha256>/``, so a later
export can never change a file that an entry points to. Never in a user's export folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from rtseg.infer.sidecar import sidecar_path, update_sidecar
from rtseg.utils.machine import cpu_name
from rtseg.utils.paths import file_sha256

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
    """torch / onnxruntime / openvino versions: an artifact measured under others is measured again."""
    out = {"torch": torch.__version__}
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

    @staticmethod
    def key(model: str, input_size, batch_size: int, threads: int) -> str:
        return f"{cpu_name()}|{model}|{input_size[0]}x{input_size[1]}|b{batch_size}|t{threads}"

    def lookup(self, key: str, weights: str) -> tuple[dict | None, str]:
        """(entry, "") when it is still valid, else (None, why it must be measured again)."""
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
            if not Path(path).is_file():
                return None, f"artifact {path} is missing"
            if file_sha256(Path(path)) != entry.get("sha256"):
                return None, f"artifact {path} changed (sha256)"
        return entry, ""

    def store(self, key: str, entry: dict, backend) -> dict:
        """Copy the backend's file (and sidecar) in by content, record it, and return the entry."""
        entry = {**entry, "artifact": None, "sha256": None}
        if backend.path is not None:
            sha = file_sha256(backend.path)
            folder = self.root / "artifacts" / sha[:16]
            folder.mkdir(parents=True, exist_ok=True)
            dst = folder / Path(backend.path).name
            if not dst.is_file():
                shutil.copy2(backend.path, dst)
            src_side = sidecar_path(backend.path)
            if src_side.is_file():
                shutil.copy2(src_side, sidecar_path(dst))
            update_sidecar(
                dst,
                input_size=entry["input_size"],
                batch_size=entry["batch_size"],
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
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.index.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index, indent=2))
        tmp.replace(self.index)


def record_int8(backend, quality: dict) -> None:
    """Write an int8 file's calibration and measured quality (per runtime) into its sidecar."""
    if backend.path is None:
        return
    side = sidecar_path(backend.path)
    known = json.loads(side.read_text()).get("quality", {}) if side.is_file() else {}
    update_sidecar(
        backend.path,
        precision="int8",
        calibration=backend.calibration,
        quality={**known, backend.name: quality},
    )
