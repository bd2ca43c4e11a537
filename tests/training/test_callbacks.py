"""Callbacks: the EMA weights are what validation, checkpoints and export see."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from rtseg.checkpoints.reading import load_network
from rtseg.training.callbacks import EMA
from rtseg.training.train import build

from ..conftest import TINY


def test_ema_weights_are_checkpointed_and_loaded(compose_cfg, tmp_path):
    cfg = compose_cfg("train", [*TINY, "model.width=8", "logger=none"])
    L.seed_everything(0)
    datamodule, net, module = build(cfg)
    ema = EMA(decay=0.99)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = L.Trainer(
        max_epochs=2, callbacks=[ema, ckpt], logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    average = {
        k[len("module.net.") :]: v
        for k, v in ema._average_model.state_dict().items()
        if k.startswith("module.net.")
    }
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    current = {k[4:]: v for k, v in saved["current_model_state"].items() if k.startswith("net.")}
    stored = {k[4:]: v for k, v in saved["state_dict"].items() if k.startswith("net.")}
    assert any(not torch.equal(current[k], average[k]) for k in average)  # averaging did something
    assert all(torch.equal(stored[k], average[k]) for k in average)
    # what every consumer of the checkpoint (eval, export, realtime) loads is the average
    loaded, _ = load_network(tmp_path / "ckpt" / "last.ckpt")
    assert all(torch.equal(loaded.state_dict()[k], average[k]) for k in average)
    # and the weights left in the module at the end of fit are the average too
    assert all(torch.equal(module.net.state_dict()[k], average[k]) for k in average)


def test_ema_decay_warms_up():
    ema = EMA(decay=0.999)
    a, c = torch.zeros(1), torch.ones(1)
    # after n updates the decay is (1 + n) / (10 + n): the first steps move the average a lot
    assert torch.isclose(ema._average(a, c, torch.tensor(0)), torch.tensor(0.9))
    assert torch.isclose(ema._average(a, c, torch.tensor(10**6)), torch.tensor(0.001), atol=1e-6)
