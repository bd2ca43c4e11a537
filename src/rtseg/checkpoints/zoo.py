"""The zoo: trained models shipped inside the package: ``<name>.safetensors`` weights + ``<name>.json`` metadata.

No pickle anywhere: the weights are plain tensors (safetensors) and the metadata is JSON (classes,
palette, normalisation, input size, the network and data configs as YAML text, the val scores and
the command that trained it). Every entrypoint that takes ``checkpoint=`` accepts these names, and
they load with no network access.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from torch import nn

from rtseg.checkpoints.meta import build_network, stored_model_config
from rtseg.errors import CheckpointError
from rtseg.utils.paths import PACKAGE_DIR, file_sha256

# the shipped files (package data, no code): <name>.safetensors + <name>.json
ZOO_DIR = PACKAGE_DIR / "zoo"

log = logging.getLogger(__name__)


def names() -> list[str]:
    return sorted(p.stem for p in ZOO_DIR.glob("*.json") if p.with_suffix(".safetensors").is_file())


#: the prefix that names a shipped model whatever files are here: ``zoo:camvid``
PREFIX = "zoo:"

# the shadowed names already reported in this process (said once, not per frame or per load)
_reported: set[tuple[str, str]] = set()


def shipped_name(spec) -> str | None:
    """The shipped model ``spec`` names, or None when it names a path: the one rule for every
    entrypoint and ``rtseg.load``.

    ``zoo:NAME`` is always the shipped model; a bare shipped name (``camvid``) is too, also where a
    file or folder of that name is in the working directory (a dataset folder is often called
    ``camvid``): that is said once, with ``./camvid`` as the way to name the folder. Anything else
    (``./camvid``, ``runs/camvid``, ``x.ckpt``) is a path."""
    text = str(spec)
    if text.startswith(PREFIX):
        name = text[len(PREFIX) :]
        if name not in names():
            raise CheckpointError(
                f"{text}: no shipped model named {name!r} (shipped: {', '.join(names()) or 'none'})"
            )
        return name
    if text not in names():
        return None
    here = Path(text)
    if here.exists() and (text, str(Path.cwd())) not in _reported:
        _reported.add((text, str(Path.cwd())))
        kind = "folder" if here.is_dir() else "file"
        log.warning(
            "%s: took the shipped model, not the %s %s here (./%s names the %s; %s%s always "
            "names the shipped model)",
            text,
            kind,
            here.resolve(),
            text,
            kind,
            PREFIX,
            text,
        )
    return text


def is_shipped(spec) -> bool:
    """Whether ``spec`` names a shipped model (``shipped_name``)."""
    return shipped_name(spec) is not None


def card(name: str) -> dict:
    path = ZOO_DIR / f"{name}.json"
    if not path.is_file():
        raise CheckpointError(
            f"no shipped model named {name!r}: shipped are {', '.join(names()) or 'none'}"
        )
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None


def weights(name: str) -> dict:
    """The state dict of shipped model ``name``, checked against the hash its card records."""
    from safetensors.torch import load_file

    path = ZOO_DIR / f"{name}.safetensors"
    want = card(name).get("sha256")
    got = file_sha256(path)
    if want and got != want:
        raise CheckpointError(
            f"{path}: sha256 {got[:12]}... does not match its card ({want[:12]}...)"
        )
    try:
        return load_file(str(path))
    except Exception as e:  # noqa: BLE001 - SafetensorError, OSError: a damaged or partial file
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({type(e).__name__}: {e}); reinstall rtseg"
        ) from None


def load_shipped(name: str) -> tuple[nn.Module, dict]:
    """A shipped model's network (eval mode, CPU) and metadata: safetensors weights + JSON card."""
    info = card(name)
    meta = dict(info["meta"])
    model_cfg = stored_model_config(meta)
    # the trained weights replace the ImageNet ones: do not require the encoder-weights package
    if "encoder_weights" in model_cfg:
        model_cfg["encoder_weights"] = None
    net = build_network(model_cfg)
    state = weights(name)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(
            f"shipped model {name}: weights do not fit its network: {str(e).splitlines()[0]}"
        ) from None
    meta["checkpoint"] = name
    meta["val_miou"] = info.get("val_miou")
    if info.get("int8"):  # measured at ship time (tools/int8_evidence.py): see infer/auto.judge
        meta["int8_evidence"] = info["int8"]
    meta.setdefault("model", info.get("model"))
    return net.eval(), meta
