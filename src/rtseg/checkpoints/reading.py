"""Reading checkpoints: rebuild the network from what the checkpoint itself recorded.

Evaluation, benchmarking, export and realtime all load trained networks through here, so a
checkpoint from another model or class count fails the same way everywhere: one clear line.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from rtseg.checkpoints import zoo
from rtseg.checkpoints.meta import build_network, describe_model, stored_model_config
from rtseg.errors import CheckpointError
from rtseg.utils.paths import file_sha256


def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint written by rtseg-train, unpickled with ``weights_only=True``.

    Only tensors and plain Python types are rebuilt, so a crafted file cannot run code: anything
    else in its pickle is refused before it is constructed.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint {path} is a folder: pass its .ckpt file, or the run folder as checkpoint=DIR"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (PK..), older torch a bare pickle (0x80): anything else is
    # another kind of file, said as such instead of the unpickler's "KeyError: 101"
    if not head:
        raise CheckpointError(f"checkpoint {path} is empty (an interrupted copy?)")
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        shown = head.decode("ascii", "replace") if head.isascii() else head.hex()
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (rtseg-train writes a zip archive; this file "
            f"starts with {shown!r})"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        what = next(
            (ln for ln in first if "GLOBAL" in ln or "Unsupported" in ln), first[0] if first else ""
        )
        raise CheckpointError(
            f"refused checkpoint {path}: it holds objects other than tensors and plain types "
            f"({what.strip()[:160]}); rtseg never runs code from a checkpoint"
        ) from None
    except Exception as e:  # noqa: BLE001 - any read failure means the same thing to the user
        raise CheckpointError(
            f"cannot read checkpoint {path}: corrupt or truncated ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no state_dict)")
    if "meta" not in ckpt.get("hyper_parameters", {}):
        raise CheckpointError(
            f"{path} was not written by rtseg-train (no model metadata in hyper_parameters)"
        )
    ckpt["_path"] = str(path)
    return ckpt


def checkpoint_meta(ckpt: dict) -> dict:
    return ckpt["hyper_parameters"]["meta"]


def check_matches(ckpt: dict, model_cfg: dict, num_classes: int) -> None:
    """Refuse a checkpoint whose network or class count differs from the configured one."""
    meta = checkpoint_meta(ckpt)
    stored = stored_model_config(meta)
    path = ckpt.get("_path", "checkpoint")
    if stored.get("_target_") != model_cfg.get("_target_") or any(
        stored.get(k) != model_cfg.get(k) for k in ("arch", "encoder_name", "width")
    ):
        raise CheckpointError(
            f"{path} holds a {describe_model(stored)} but the config asks for {describe_model(model_cfg)}: "
            "pass the matching model=... (and model.encoder_name=...)"
        )
    trained = stored.get("num_classes")
    if trained != num_classes:
        raise CheckpointError(
            f"{path} was trained for {trained} classes ({meta.get('dataset')}) but the config has "
            f"{num_classes} (data={meta.get('dataset') if trained != num_classes else ''}): use the matching data=..."
        )


def load_state(net: nn.Module, ckpt: dict) -> nn.Module:
    state = {k[len("net.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = next((ln.strip() for ln in first[1:] if ln.strip()), first[0] if first else "")
        raise CheckpointError(
            f"{ckpt.get('_path')} does not fit the configured network: {detail}"
        ) from None
    return net


def load_network(path: str | Path) -> tuple[nn.Module, dict]:
    """The trained network (eval mode, CPU) and its metadata, from a checkpoint or shipped name alone."""
    name = zoo.shipped_name(path)
    if name is not None:
        return zoo.load_shipped(name)
    ckpt = read_checkpoint(path)
    meta = checkpoint_meta(ckpt)
    net = build_network(stored_model_config(meta))
    load_state(net, ckpt)
    meta = dict(meta)
    meta["checkpoint"] = str(Path(path).resolve())
    meta["val_miou"] = _val_miou(ckpt)
    return net.eval(), meta


def weights_identity(spec: str | Path) -> dict:
    """Which weights ``spec`` names, as run records keep it: the resolved file and its sha256, or
    a shipped model's name and the sha256 its card records (a teacher, a warm start's source)."""
    name = zoo.shipped_name(spec)
    if name is not None:
        return {"source": name, "sha256": zoo.card(name).get("sha256")}
    path = Path(str(spec))
    if path.is_file():
        return {"source": str(path.resolve()), "sha256": file_sha256(path)}
    return {"source": str(spec), "sha256": None}


def _val_miou(ckpt: dict) -> float | None:
    for key, state in ckpt.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_score") is not None:
            return float(state["best_model_score"])
    return None
