"""The JSON beside every exported file: what a consumer needs to run it (classes, palette, input size,
mean/std), where it came from, and what ties it to the file it describes.

A sidecar records the sha256 of its model file (and of an OpenVINO ``.bin``) and a digest of its
own fields: ``read_sidecar`` refuses, in one line, a model file that is not the one exported with
it (edited bytes, another export's file) and a sidecar edited after it was written (a val mIoU or an
int8 drop typed in by hand would otherwise be trusted and copied into realtime.json). Every writer
(``write_sidecar``, ``update_sidecar``) stores the digest again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from rtseg.errors import ExportError
from rtseg.utils.paths import file_sha256, write_atomic

log = logging.getLogger("rtseg.infer")

SIDECAR_KEYS = ("dataset", "num_classes", "class_names", "palette", "ignore_index", "mean", "std")
DIGEST = "digest"


def sidecar_path(model_path: Path) -> Path:
    """``model.onnx`` -> ``model.json``, ``model.int8.onnx`` -> ``model.int8.json`` (an fp32 file and its
    int8 version in one folder keep separate records); an .mlpackage folder -> ``model.json`` beside it."""
    return Path(model_path).with_suffix(".json")


def file_hashes(model_path: Path) -> dict:
    """``sha256`` of the model file, and ``bin_sha256`` of an OpenVINO model's weights."""
    model_path = Path(model_path)
    if model_path.is_dir():  # an .mlpackage: a folder, not hashed
        return {}
    out = {"sha256": file_sha256(model_path)}
    if model_path.suffix == ".xml" and model_path.with_suffix(".bin").is_file():
        out["bin_sha256"] = file_sha256(model_path.with_suffix(".bin"))
    return out


def digest(data: dict) -> str:
    """sha256 of a sidecar's fields (all but the digest itself), canonical JSON."""
    body = {k: v for k, v in data.items() if k != DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_sidecar(model_path: Path, verify: bool = True) -> dict:
    """The sidecar of ``model_path``; with ``verify``, checked against the file and itself."""
    path = sidecar_path(model_path)
    if not path.is_file():
        raise ExportError(
            f"{model_path}: no sidecar {path.name} next to it (write it with rtseg-export)"
        )
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ExportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if verify:
        verify_sidecar(model_path, data)
    return data


def verify_sidecar(model_path: Path, data: dict) -> None:
    """One line when the sidecar was edited, or the model file is not the one it describes."""
    path = sidecar_path(model_path)
    if DIGEST not in data:
        log.warning(
            "%s has no digest (written before rtseg recorded one): its fields are not checked; "
            "export again to bind it to its file",
            path,
        )
    elif data[DIGEST] != digest(data):
        raise ExportError(
            f"{path} was edited after it was written (its digest does not match its fields): "
            f"export {Path(model_path).name} again"
        )
    for key, actual in file_hashes(model_path).items():
        recorded = data.get(key)
        if recorded is not None and recorded != actual:
            which = Path(model_path).with_suffix(".bin") if key == "bin_sha256" else model_path
            raise ExportError(
                f"{which} does not match its sidecar {path.name} (sha256 differs: the file changed "
                "after export, or the sidecar belongs to another export): export it again"
            )


def _write(path: Path, data: dict) -> Path:
    data = {k: v for k, v in data.items() if k != DIGEST}
    data[DIGEST] = digest(data)
    return write_atomic(path, json.dumps(data, indent=2))


def update_sidecar(model_path: Path, **fields) -> Path:
    """Merge ``fields`` into the sidecar (created when absent): artifacts record calibration and
    quality after they are measured. The digest is written again."""
    path = sidecar_path(model_path)
    data = json.loads(path.read_text()) if path.is_file() else {"file": Path(model_path).name}
    data.update(fields)
    return _write(path, data)


def write_sidecar(
    model_path: Path,
    meta: dict,
    input_size,
    fmt: str,
    precision: str,
    batch_size: int = 1,
    extra: dict | None = None,
    sidecar: Path | None = None,
    name: str | None = None,
) -> Path:
    """The sidecar of ``model_path`` (at ``sidecar``: a temporary name while an export is being
    published; ``name``: the model file's final name when ``model_path`` is a temporary one)."""
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
        file=name or Path(model_path).name,
        **file_hashes(model_path),
        **(extra or {}),
    )
    return _write(Path(sidecar or sidecar_path(model_path)), data)
