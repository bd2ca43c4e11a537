"""Shared fixtures of the benchmark tests: a tiny network, and a real (one-epoch) checkpoint."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from rtseg.utils import CONF_DIR


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture
def tiny_net():
    from rtseg.models.baseline import ThreeConvNet

    torch.manual_seed(0)
    return ThreeConvNet(num_classes=5, width=8).eval()


def compose_cfg(config_name: str, overrides: list[str], hydra: bool = False):
    """Compose a config; ``hydra=True`` keeps the ``hydra`` node (callbacks, choices)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=hydra)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """rtseg-train for one epoch on 32x32 synthetic scenes: a real checkpoint with meta and val mIoU."""
    from rtseg.train import train

    out = tmp_path_factory.mktemp("train")
    cfg = compose_cfg(
        "train",
        [
            f"paths.output_dir={out}",
            f"paths.log_dir={out}",
            "data.input_size=[32,32]",
            "data.lengths={train:8,val:4,test:4}",
            "data.batch_size=4",
            "data.val_batch_size=4",
            "model.width=8",
            "trainer.max_epochs=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_model_summary=false",
            "logger=none",
            "callbacks.prediction_images=null",
            "callbacks.progress_bar=null",
            "callbacks.lr_monitor=null",
            "test=false",
            "threads=1",
        ],
    )
    train(cfg)
    GlobalHydra.instance().clear()
    best = sorted((out / "checkpoints").glob("best*.ckpt"))
    assert best, f"training wrote no best checkpoint in {out}"
    return best[0]
