"""Test-time augmentation and the inference size (rtseg.models.tta): probabilities averaged over
flips and scales, back at the input's size; rtseg-eval, the API and rtseg-bench take it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

import rtseg
from rtseg.errors import RtsegError
from rtseg.models.tta import TTA, TestTimeAugmented, tta_logits


class Recorder(torch.nn.Module):
    """Logits that favour class 1 on the left half of whatever it is given; records input sizes."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        out = torch.zeros(x.shape[0], 2, *x.shape[-2:])
        out[:, 1, :, : x.shape[-1] // 2] = 2.0
        return out


def test_parse_names_and_mappings():
    assert TTA.parse(None) is None and TTA.parse("none") is None
    assert TTA.parse("flip") == TTA(True, (1.0,)) and TTA.parse("flip").passes == 2
    assert TTA.parse("ms_flip").passes == 8
    assert TTA.parse({"flip": False, "scales": [1, 1.5]}).describe() == "scales 1/1.5"
    with pytest.raises(RtsegError, match="tta=blur"):
        TTA.parse("blur")
    with pytest.raises(RtsegError, match="tta.scales"):
        TTA.parse({"scales": [0]})


def test_flip_averages_the_mirrored_pass_back_in_place():
    net = Recorder()
    x = torch.zeros(1, 3, 8, 10)
    probs = tta_logits(net, x, TTA.parse("flip")).exp()
    # the left half says class 1 unflipped; the flipped pass, flipped back, says it on the right
    assert torch.allclose(probs.sum(1), torch.ones(1, 8, 10), atol=1e-5)
    assert torch.allclose(probs[0, 1, :, 0], probs[0, 1, :, -1])  # symmetric now
    assert net.sizes == [(8, 10), (8, 10)]


def test_scales_and_the_inference_size_come_back_to_the_input_size():
    net = Recorder()
    wrapped = TestTimeAugmented(net, TTA.parse({"scales": [1, 1.5]}), size=(16, 20))
    out = wrapped(torch.zeros(2, 3, 8, 10))
    assert out.shape == (2, 2, 8, 10) and net.sizes == [(16, 20), (24, 30)]
    plain = TestTimeAugmented(Recorder(), None, size=(8, 10))
    plain(torch.zeros(1, 3, 8, 10))
    assert plain.net.sizes == [(8, 10)]  # nothing asked: the network alone


def test_eval_takes_tta_and_input_size(tiny_checkpoint, tmp_path, compose_cfg):
    from rtseg.training.eval import evaluate

    base = [f"checkpoint={tiny_checkpoint}", "split=val", "threads=1"]
    plain = evaluate(compose_cfg("eval", base, run_dir=tmp_path / "a"))
    GlobalHydra.instance().clear()
    flipped = evaluate(
        compose_cfg("eval", [*base, "tta=flip", "input_size=[48,48]"], run_dir=tmp_path / "b")
    )
    record = json.loads((tmp_path / "b" / "eval.json").read_text())
    assert record["tta"] == "flip" and record["input_size"] == [48, 48]
    assert plain["tta"] is None and 0 <= flipped["miou"] <= 1


def test_the_api_and_its_backends_take_tta():
    image = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    m = rtseg.load("camvid", tta="flip", threads=1, size=[96, 128])
    assert m.backend.name == "eager+flip" and m.predict(image).shape == (60, 80)
    with pytest.raises(RtsegError, match="scales need a backend that takes any input size"):
        rtseg.load("camvid", backend="onnxruntime", tta="ms", threads=1, size=[96, 128])


def test_eval_runs_a_model_at_its_trained_size_unless_told(monkeypatch):
    """data=camvid brings the preset's 360x480: a model trained for 450x600 still runs at 450x600;
    input_size= or a data.input_size= on the command line says otherwise."""
    from omegaconf import OmegaConf

    from rtseg.training import eval as ev

    meta = {"input_size": [450, 600]}
    data = OmegaConf.create({"input_size": [360, 480]})
    cfg = OmegaConf.create({"input_size": None})
    monkeypatch.setattr(ev, "hydra_context", lambda: {"overrides": ["data=camvid"]})
    assert ev.network_size(cfg, data, meta) == [450, 600]
    monkeypatch.setattr(ev, "hydra_context", lambda: {"overrides": ["data.input_size=[540,720]"]})
    data.input_size = [540, 720]
    assert ev.network_size(cfg, data, meta) == [540, 720]
    cfg.input_size = [300, 400]
    assert ev.network_size(cfg, data, meta) == [300, 400]
    assert ev.network_size(OmegaConf.create({"input_size": None}), data, {}) == [540, 720]


def test_averaging_matches_the_passes_and_leaves_a_reused_output_buffer_alone():
    """The sums grow in place; a backend that hands back one buffer every call (as runtimes do)
    must not see it changed, and the result is the plain mean of each pass's probabilities."""
    torch.manual_seed(0)
    weights = torch.randn(3, 3, 1, 1)
    buffer = torch.empty(1, 3, 8, 10)

    def backend(x):
        out = torch.nn.functional.conv2d(x, weights)
        out[..., : x.shape[-1] // 3] += 1.5  # not mirror-symmetric
        out = torch.nn.functional.interpolate(out, (8, 10), mode="bilinear", align_corners=False)
        buffer.copy_(out)
        return buffer

    x = torch.randn(1, 3, 8, 10)
    tta = TTA.parse({"scales": [1, 1.5], "flip": True})
    got = tta_logits(backend, x, tta)
    passes = []
    for s in (1, 1.5):
        size = (round(8 * s), round(10 * s))
        xs = torch.nn.functional.interpolate(x, size, mode="bilinear") if s != 1 else x
        passes.append(torch.softmax(backend(xs).clone(), 1))
        passes.append(torch.softmax(backend(xs.flip(-1)).clone(), 1).flip(-1))
    assert torch.allclose(got, torch.stack(passes).mean(0).log(), atol=1e-6)
    last = torch.softmax(buffer, 1)  # the buffer still holds the last pass's logits, untouched
    assert torch.allclose(last.flip(-1), passes[-1], atol=1e-6)
