"""The real-time heads on EfficientNet-Lite: build, any size, a training step, ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtseg.errors import RtsegError
from rtseg.models import lite
from rtseg.models.output import split_output
from rtseg.training.losses import SegLoss
from rtseg.training.module import SegmentationModule

SPECS = [
    ("lraspp", {}),
    ("ppliteseg", {"out_stride": 8, "decoder_channels": [32, 64, 128]}),
    ("ppliteseg", {"out_stride": 4}),
]


@pytest.mark.parametrize(("head", "kw"), SPECS)
def test_builds_runs_any_size_and_trains(head, kw):
    torch.manual_seed(0)
    net = lite.create(head, 11, encoder_weights=None, **kw)
    net.eval()
    with torch.no_grad():
        for size in ((360, 480), (256, 256)):
            assert net(torch.randn(1, 3, *size)).shape == (1, 11, *size)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = torch.randn(2, 3, 64, 96), torch.randint(0, 11, (2, 64, 96))
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    head_params = list(net.net.head.parameters())
    assert all(p.grad is not None for p in head_params)


def test_pretrained_encoder_loads_offline_weights():
    net = lite.create("ppliteseg", 11, encoder_weights="efficientnet-lite0")
    assert net.input_normalization == ((0.5,) * 3, (0.5,) * 3)
    w = net.net.encoder.model.conv_stem.weight
    # ImageNet weights, not the random init: the stem's filters have a clear structure
    assert w.abs().mean() > 0.05


def test_binary_form_ends_in_tanh():
    net = lite.create("lraspp", 1, encoder_weights=None).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 64) * 10)
    assert out.shape == (1, 1, 64, 64) and out.abs().max() <= 1


@pytest.mark.parametrize(("head", "kw"), SPECS)
def test_onnx_export_matches_eager(head, kw, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = lite.create(head, 11, encoder_weights=None, **kw).eval()
    x = torch.randn(1, 3, 360, 480)
    path = tmp_path / "m.onnx"
    torch.onnx.export(net, x, path, opset_version=17, dynamo=False, input_names=["input"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = net(x).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-2  # random-init nets: small logits, float reordering
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.98


def test_bad_options_are_one_line_errors():
    with pytest.raises(RtsegError, match="out_stride"):
        lite.create("lraspp", 11, encoder_weights=None, out_stride=4)
    with pytest.raises(RtsegError, match="efficientnet_lite1"):
        lite.create(
            "ppliteseg", 11, encoder_name="efficientnet_lite1", encoder_weights="efficientnet-lite0"
        )
    with pytest.raises(RtsegError, match="head="):
        lite.create("bisenet", 11)


def test_deep_supervision_changes_the_training_loss_not_the_exported_graph(tmp_path):
    torch.manual_seed(0)
    kw = dict(head="ppliteseg", num_classes=5, encoder_weights=None, out_stride=4)
    net = lite.create(**kw, aux_heads=True)
    x, y = torch.randn(2, 3, 64, 96), torch.randint(0, 5, (2, 64, 96))
    out, aux = split_output(net.train()(x))
    assert len(aux) == 3 and all(a.shape == out.shape == (2, 5, 64, 96) for a in aux)
    assert aux[0].requires_grad
    plain = lite.create(**kw)
    missing, unexpected = plain.load_state_dict(net.state_dict(), strict=False)
    assert not missing and unexpected and all(".head.aux." in k for k in unexpected)
    # eval mode: one output, identical to the same network without the heads
    net.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(net(x), plain(x))
    loss_fn = SegLoss()
    module = SegmentationModule(net.train(), num_classes=5, train_metrics=False, aux_weight=1.0)
    module.log = lambda *a, **k: None
    with_aux = module._step((x, y), "train")
    assert with_aux > loss_fn(out, y) + 1e-3
    onnx = pytest.importorskip("onnx")
    from rtseg.infer.onnx import export_onnx

    graph = onnx.load(str(export_onnx(net, tmp_path / "m.onnx", (128, 160)))).graph
    assert [o.name for o in graph.output] == ["logits"]
    plain_graph = onnx.load(str(export_onnx(plain, tmp_path / "p.onnx", (128, 160)))).graph
    assert len(graph.node) == len(plain_graph.node)
    assert len(graph.initializer) == len(plain_graph.initializer)
    assert not [i.name for i in graph.initializer if "aux" in i.name]


def test_parameter_count_is_the_exported_networks():
    """Issue 37: run records and bench tables counted the training-only heads (3.56 M, not 3.50)."""
    from rtseg.models.cost import count_params

    kw = dict(head="ppliteseg", num_classes=11, encoder_weights=None, out_stride=4)
    with_heads, plain = lite.create(**kw, aux_heads=True), lite.create(**kw)
    assert sum(p.numel() for p in with_heads.parameters()) > count_params(with_heads)
    assert count_params(with_heads) == count_params(plain)
    module = SegmentationModule(with_heads, num_classes=11, train_metrics=False)
    assert count_params(module) == count_params(plain)  # "net." prefix: still left out
