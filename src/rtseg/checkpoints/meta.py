"""What a checkpoint records about its network, and rebuilding the network from that record alone."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn


def stored_model_config(meta: dict) -> dict:
    """The network's config as it was trained (kept as YAML text in the checkpoint)."""
    return OmegaConf.to_container(OmegaConf.create(meta["model_yaml"]), resolve=True)


# rtseg.models.lite.create's heads by the name their config and run records use
# (conf/model/ppliteseg.yaml, conf/model/lraspp_lite.yaml: plain "lraspp" is torchvision's)
LITE_HEADS = {"ppliteseg": "ppliteseg", "lraspp": "lraspp_lite"}


def describe_model(model_cfg: dict) -> str:
    """``name/encoder (K classes)``: the name is the model config's (``ppliteseg``, ``Unet``), as in
    run records and cards, never the factory function's (``create``)."""
    target = str(model_cfg.get("_target_", "?"))
    if target == "rtseg.models.lite.create":
        head = str(model_cfg.get("head"))
        bits = [
            LITE_HEADS.get(head, head),
            str(model_cfg.get("encoder_name", "efficientnet_lite0")),
        ]
        return f"{'/'.join(bits)} ({model_cfg.get('num_classes')} classes)"
    bits = [model_cfg.get("arch") or target.rsplit(".", 1)[-1]]
    from rtseg.models.pretrained import OFFLINE_WEIGHTS, timm_name

    weights = model_cfg.get("encoder_weights")
    if weights in OFFLINE_WEIGHTS:  # offline weights choose the encoder (see models/smp.py)
        bits.append(f"tu-{timm_name(weights)}")
    elif model_cfg.get("encoder_name"):
        bits.append(model_cfg["encoder_name"])
    return f"{'/'.join(bits)} ({model_cfg.get('num_classes')} classes)"


def build_network(model_cfg: dict) -> nn.Module:
    """The untrained network a stored model config describes (weights are loaded by the caller)."""
    return instantiate(OmegaConf.create(model_cfg))


def recorded_data_config(meta: dict):
    """The data config the checkpoint recorded (a ``DictConfig``), or None when it has none.

    Recorded as the ``data`` node: its ``${data.root}`` references need the node under that name."""
    if not meta.get("data_yaml"):
        return None
    return OmegaConf.create({"data": OmegaConf.create(meta["data_yaml"])}).data
