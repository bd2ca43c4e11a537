"""Every conf/model/*.yaml builds, keeps the (B, K, H, W) contract at CamVid's size, and trains.

The configs are globbed, so a new model file is covered without touching this test. The real-time
models are also exported to ONNX and checked against ONNX Runtime.
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rtseg.checkpoints.reading import check_matches, load_network, read_checkpoint
from rtseg.errors import CheckpointError
from rtseg.models.cost import count_params
from rtseg.models.fastscnn import FastSCNN
from rtseg.models.pooling import adaptive_avg_pool
from rtseg.models.pretrained import NORMALIZATION
from rtseg.training.losses import SegLoss
from rtseg.utils.config import compose_config, to_container
from rtseg.utils.paths import CONF_DIR

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
SYNTHETIC_CLASSES = 7


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compose_train(*overrides: str):
    return compose_config("train", ["data=synthetic", "logger=none", *overrides])


def build_net(name: str, *overrides: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return instantiate(compose_train(f"model={name}", *overrides).model)


def test_zoo_is_complete():
    smp_archs = {
        "unet",
        "unetplusplus",
        "fpn",
        "linknet",
        "pspnet",
        "deeplabv3",
        "deeplabv3plus",
        "manet",
        "pan",
        "upernet",
        "segformer",
    }
    assert smp_archs | {"baseline", "lraspp", "deeplabv3_mobilenet", "fastscnn"} <= set(MODELS)


# forward at 360x480 costs > 80 GFLOPs for these: a few seconds each on one core
HEAVY = {"unetplusplus", "upernet"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in MODELS]
)
def test_forward_keeps_input_size(name):
    net = build_net(name).eval()
    with torch.no_grad():
        for h, w in [(360, 480), (256, 256)]:
            out = net(torch.randn(1, 3, h, w))
            assert out.shape == (1, SYNTHETIC_CLASSES, h, w), f"{name} at {h}x{w}"
            assert torch.isfinite(out).all()


def train_one_step(name: str, net: torch.nn.Module) -> None:
    """Batch 2 at a size that is not a multiple of 32 (padding exercised); every weight must learn."""
    net.train()
    x = torch.randn(2, 3, 96, 136)
    y = torch.randint(0, SYNTHETIC_CLASSES, (2, 96, 136))
    y[:, :8] = 255  # ignored pixels
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    out = net(x)
    assert out.shape == (2, SYNTHETIC_CLASSES, 96, 136)
    loss = SegLoss(ignore_index=255)(out, y)
    loss.backward()
    # a parameter without a gradient is dead weight that inflates the model's reported size
    dead = [k for k, p in net.named_parameters() if p.grad is None]
    assert not dead, f"{name}: {len(dead)} parameters get no gradient, e.g. {dead[0]}"
    before = [p.detach().clone() for p in net.parameters()]
    optimizer.step()
    assert torch.isfinite(loss)
    # (a conv bias right before a batch norm has a zero gradient: not every tensor must move)
    changed = sum(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))
    assert changed > 0.9 * len(before), f"{name}: only {changed}/{len(before)} tensors were updated"


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step(name):
    train_one_step(name, build_net(name))


SMP_MODELS = [
    n
    for n in MODELS
    if OmegaConf.load(CONF_DIR / "model" / f"{n}.yaml")._target_ == "rtseg.models.smp.create"
]


@pytest.mark.parametrize("name", SMP_MODELS)
def test_smp_arch_takes_the_offline_pretrained_encoder(name):
    """The CamVid acceptance path: ``model.encoder_weights=efficientnet-lite0`` on every smp arch."""
    net = build_net(name, "model.encoder_weights=efficientnet-lite0")
    assert type(net.net.encoder).__name__ == "TimmUniversalEncoder"  # tu-efficientnet_lite0
    assert net.input_normalization == NORMALIZATION
    train_one_step(name, net)


@pytest.mark.parametrize("name", MODELS)
def test_single_output_channel_is_the_binary_tanh_form(name):
    """``model.num_classes=1`` is the seed article's binary net: its output must be tanh in [-1, 1]."""
    net = build_net(name, "model.num_classes=1").eval()
    with torch.no_grad():
        out = net(
            100 * torch.randn(1, 3, 64, 96)
        )  # a piecewise-linear net without tanh exceeds 1 here
    assert out.shape == (1, 1, 64, 96)
    assert out.abs().max() <= 1.0, (
        f"{name}: binary output reaches {out.abs().max():.1f}, expected tanh"
    )


def test_fastscnn_params_match_paper():
    # Poudel et al. 2019, Table 1 / Section 4: 1.11 million parameters for 19 Cityscapes classes
    params = count_params(FastSCNN(num_classes=19))
    assert abs(params - 1.11e6) / 1.11e6 < 0.10, params


def test_fastscnn_pooling_is_adaptive_average_pooling():
    for h, w in [(12, 15), (4, 4), (2, 3)]:  # 4x4 and 2x3: more bins than cells (a 128x128 input)
        x = torch.randn(2, 5, h, w)
        for bins in (1, 2, 3, 6, 7):
            torch.testing.assert_close(
                adaptive_avg_pool(x, bins), torch.nn.functional.adaptive_avg_pool2d(x, bins)
            )


def test_fastscnn_any_input_size():
    net = FastSCNN(num_classes=3).eval()
    with torch.no_grad():
        for h, w in [(33, 47), (97, 131), (360, 480)]:
            assert net(torch.randn(1, 3, h, w)).shape == (1, 3, h, w)


@pytest.mark.parametrize("name", ["lraspp", "deeplabv3_mobilenet"])
def test_torchvision_models_return_logits_not_a_dict(name):
    net = build_net(name).eval()
    assert (
        getattr(net.model, "aux_classifier", None) is None
    )  # no auxiliary head to train or export
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 96))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (1, SYNTHETIC_CLASSES, 64, 96)


REALTIME = [
    ("baseline", []),
    ("lraspp", []),
    ("fastscnn", []),
    ("unet", ["model.encoder_weights=efficientnet-lite0"]),
]


@pytest.mark.parametrize(("name", "overrides"), REALTIME, ids=[n for n, _ in REALTIME])
def test_onnx_export_matches_torch(name, overrides, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    net = build_net(name, *overrides).eval()
    if name == "unet":
        assert type(net.net.encoder).__name__ == "TimmUniversalEncoder"  # tu-efficientnet_lite0
    x = torch.randn(1, 3, 360, 480)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        net,
        (x,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["logits"],
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = net(x).numpy()
    assert got.shape == want.shape == (1, SYNTHETIC_CLASSES, 360, 480)
    assert abs(got - want).max() < 1e-3 * max(1.0, abs(want).max())


def save_checkpoint_like_training(name: str, path, *overrides: str) -> None:
    """What rtseg-train leaves: state_dict with ``net.`` keys and the meta (dataset, model YAML) in hparams."""
    from rtseg.training.train import build

    cfg = compose_train(f"model={name}", f"paths.output_dir={path.parent}", *overrides)
    _, _, module = build(cfg)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)


def test_checkpoint_roundtrip_and_class_count_mismatch(tmp_path):
    ckpt_path = tmp_path / "fastscnn.ckpt"
    save_checkpoint_like_training("fastscnn", ckpt_path)
    net, meta = load_network(ckpt_path)
    assert meta["num_classes"] == SYNTHETIC_CLASSES
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, SYNTHETIC_CLASSES, 64, 64)

    other = compose_train("model=fastscnn", "data.num_classes=11")
    with pytest.raises(CheckpointError, match=r"trained for 7 classes .* config has 11"):
        check_matches(
            read_checkpoint(ckpt_path), to_container(other.model), other.model.num_classes
        )


def test_checkpoint_of_another_encoder_is_refused(tmp_path):
    ckpt_path = tmp_path / "unet.ckpt"
    save_checkpoint_like_training("unet", ckpt_path, "model.encoder_name=tu-efficientnet_lite0")
    other = compose_train("model=unet")  # resnet18
    with pytest.raises(CheckpointError, match="tu-efficientnet_lite0"):
        check_matches(
            read_checkpoint(ckpt_path), to_container(other.model), other.model.num_classes
        )
