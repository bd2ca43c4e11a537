"""The JSON beside every exported file: what a consumer needs to run it (classes, palette, input size,
mean/std) and where it came from."""

from __future__ import annotations

import json
from pathlib import Path

from rtseg.errors import ExportError
from rtseg.utils.paths import write_atomic

SIDECAR_KEYS = ("dataset", "num_classes", "class_names", "palette", "ignore_index", "mean", "std")


def sidecar_path(model_path: Path) -> Path:
    """``model.onnx`` -> ``model.json``, ``model.int8.onnx`` -> ``model.int8.json`` (an fp32 file and its
    int8 version in one folder keep separate records); an .mlpackage folder -> ``model.json`` beside it."""
    return Path(model_path).with_suffix(".json")


def read_sidecar(model_path: Path) -> dict:
    path = sidecar_path(model_path)
    if not path.is_file():
        raise ExportError(
            f"{model_path}: no sidecar {path.name} next to it (write it with rtseg-export)"
        )
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ExportError(f"{path}: not valid JSON ({e})") from None


def update_sidecar(model_path: Path, **fields) -> Path:
    """Merge ``fields`` into the sidecar (created when absent): artifacts record calibration and
    quality after they are measured."""
    path = sidecar_path(model_path)
    data = json.loads(path.read_text()) if path.is_file() else {"file": Path(model_path).name}
    data.update(fields)
    return write_atomic(path, json.dumps(data, indent=2))


def write_sidecar(
    model_path: Path,
    meta: dict,
    input_size,
    fmt: str,
    precision: str,
    batch_size: int = 1,
    extra: dict | None = None,
) -> Path:
    data = {k: meta.get(k) for k in SIDECAR_KEYS}
    data.update(
        input_size=[int(v) for v in input_size],
        batch_size=int(batch_size),
        layout="NCHW float32, RGB, (x/255 - mean) / std",
        output="logits (B, num_classes, H, W); class = argmax over channels (sign of channel 0 when num_classes == 1)",
        val_miou=meta.get("val_miou"),
        source_checkpoint=meta.get("checkpoint"),
        model=meta.get("model_yaml"),
        format=fmt,
        precision=precision,
        file=Path(model_path).name,
        **(extra or {}),
    )
    return write_atomic(sidecar_path(model_path), json.dumps(data, indent=2))
