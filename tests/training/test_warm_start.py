"""Warm start (``init_weights=``): training begins from trained weights, or stops with one line."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rtseg.checkpoints.reading import load_network
from rtseg.errors import CheckpointError
from rtseg.training import warm_start as ws
from rtseg.training.train import train

from ..conftest import FAST_TRAIN, TINY


def test_a_run_starts_from_the_given_weights_and_records_them(compose_cfg, tiny_ckpt, tmp_path):
    run = tmp_path / "run"
    # lr 0: the weights the run ends with are the ones it started from
    cfg = compose_cfg(
        "train",
        [*TINY, *FAST_TRAIN, "model.width=8", "trainer.max_epochs=1", "test=false",
         "module.optimizer.lr=0", f"init_weights={tiny_ckpt}"],
        run_dir=run,
    )  # fmt: skip
    train(cfg)
    source, _ = load_network(tiny_ckpt)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name, value in source.state_dict().items():
        assert torch.equal(saved[f"net.{name}"], value), name
    record = json.loads((run / "run.json").read_text())["extra"]["init_weights"]
    assert record["source"] == str(tiny_ckpt.resolve()) and len(record["sha256"]) == 64
    assert record["source_input_size"] == [32, 48]


def test_without_it_the_run_starts_from_its_own_init(compose_cfg, tiny_ckpt, tmp_path):
    run = tmp_path / "run"
    cfg = compose_cfg(
        "train",
        [*TINY, *FAST_TRAIN, "model.width=8", "trainer.max_epochs=1", "test=false",
         "module.optimizer.lr=0", "seed=3"],
        run_dir=run,
    )  # fmt: skip
    train(cfg)
    source, _ = load_network(tiny_ckpt)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not torch.equal(saved["net.conv1.weight"], source.state_dict()["conv1.weight"])
    assert "init_weights" not in json.loads((run / "run.json").read_text())["extra"]


def test_weights_of_another_network_stop_the_run_with_one_line(tiny_ckpt):
    net = ws.load_network(tiny_ckpt)[0].__class__(7, width=16)
    cfg = {"_target_": "rtseg.models.baseline.ThreeConvNet", "num_classes": 7, "width": 16}
    with pytest.raises(CheckpointError) as e:
        ws.warm_start(net, str(tiny_ckpt), cfg)
    msg = str(e.value)
    assert f"init_weights={tiny_ckpt}" in msg and "does not fit" in msg and "shape" in msg
    assert "\n" not in msg


class _Net(nn.Module):
    def __init__(self, aux: bool, extra: bool = False):
        super().__init__()
        self.body = nn.Conv2d(3, 4, 1)
        self.aux = nn.ModuleList([nn.Conv2d(4, 2, 1)]) if aux else None
        self.more = nn.Conv2d(4, 4, 1) if extra else None


def _source(monkeypatch, net):
    meta = {"model_yaml": "_target_: x.Net\nnum_classes: 2\n", "input_size": [8, 8]}
    monkeypatch.setattr(ws, "load_network", lambda spec: (net, meta))


def test_training_only_heads_missing_from_the_source_keep_their_init(monkeypatch, tmp_path):
    source = _Net(aux=False)  # shipped weights carry no deep-supervision heads
    _source(monkeypatch, source)
    net = _Net(aux=True)
    fresh = net.aux[0].weight.clone()
    record = ws.warm_start(net, "shipped", {"_target_": "x.Net", "num_classes": 2})
    assert torch.equal(net.body.weight, source.body.weight)
    assert torch.equal(net.aux[0].weight, fresh) and record["fresh"] == 2


def test_any_other_missing_part_is_refused(monkeypatch):
    _source(monkeypatch, _Net(aux=False))
    with pytest.raises(CheckpointError, match=r"it lacks more\.(bias|weight)"):
        ws.warm_start(_Net(aux=False, extra=True), "src", {"_target_": "x.Net", "num_classes": 2})
    _source(monkeypatch, _Net(aux=False, extra=True))
    with pytest.raises(CheckpointError, match=r"it has more\.(bias|weight)"):
        ws.warm_start(_Net(aux=False), "src", {"_target_": "x.Net", "num_classes": 2})


def test_a_missing_source_is_named_with_its_key(tmp_path):
    with pytest.raises(CheckpointError, match=r"^init_weights=.*nope.ckpt: checkpoint not found"):
        ws.warm_start(nn.Conv2d(1, 1, 1), str(tmp_path / "nope.ckpt"), {})


def test_the_shipped_model_warms_the_recipe_network_with_its_training_heads(compose_cfg):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = compose_cfg("train", ["experiment=camvid_ppliteseg_lite0"])
    assert cfg.model.aux_heads  # the recipe trains deep-supervision heads camvid does not ship
    net = instantiate(cfg.model)
    record = ws.warm_start(net, "camvid", OmegaConf.to_container(cfg.model, resolve=True))
    shipped, _ = load_network("camvid")
    x = torch.rand(1, 3, 64, 96)
    assert torch.allclose(net.eval()(x), shipped(x), atol=1e-5)
    assert record["fresh"] > 0 and record["sha256"] and record["source_input_size"] == [360, 480]
