"""Launcher configs compose: SLURM (submitit), local processes (submitit) and joblib."""

from __future__ import annotations

import pytest
from hydra.utils import get_class

from rtseg.utils.config import compose_config


def hydra_cfg(*overrides: str):
    return compose_config("train", list(overrides), hydra=True).hydra


@pytest.mark.parametrize(
    "launcher, target",
    [
        ("submitit_slurm", "SlurmLauncher"),
        ("slurm", "SlurmLauncher"),
        ("submitit_local", "LocalLauncher"),
        ("local_processes", "LocalLauncher"),
        ("joblib", "JoblibLauncher"),
        ("parallel", "JoblibLauncher"),
    ],
)
def test_launcher_composes_and_its_class_imports(launcher, target):
    h = hydra_cfg(f"hydra/launcher={launcher}", "hydra.sweep.dir=/tmp/sweep")
    assert h.launcher._target_.rsplit(".", 1)[-1] == target
    assert get_class(h.launcher._target_).__name__ == target
    if "submitit" in h.launcher._target_:
        assert h.launcher.submitit_folder == "/tmp/sweep/.submitit/%j"


def test_slurm_preset_values(monkeypatch):
    monkeypatch.setenv("SLURM_PARTITION", "gpu-short")
    h = hydra_cfg(
        "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4"
    )
    assert h.launcher.partition == "gpu-short"
    assert (h.launcher.gpus_per_node, h.launcher.tasks_per_node, h.launcher.timeout_min) == (
        4,
        4,
        240,
    )
    assert "export NO_ALBUMENTATIONS_UPDATE=1" in h.launcher.setup
    assert h.launcher.array_parallelism == 16


def test_sweep_summary_callback_is_registered():
    h = hydra_cfg()
    assert h.callbacks.sweep_summary._target_ == "rtseg.tracking.sweep.SweepSummary"
    assert get_class(h.callbacks.sweep_summary._target_).__name__ == "SweepSummary"


@pytest.mark.parametrize(
    "name", ["synthetic_optuna", "camvid_optuna", "arch_grid", "model_grid", "camvid_grid"]
)
def test_hparams_search_presets_compose(name):
    h = hydra_cfg(f"hparams_search={name}")
    assert str(h.mode) == "RunMode.MULTIRUN"
    params = dict(h.sweeper.params)
    if "optuna" in name:
        assert h.sweeper.direction == "maximize" and h.sweeper.storage is None
        assert 0 < h.sweeper.max_failure_rate < 1
        assert {
            "module.optimizer.lr",
            "module.optimizer.weight_decay",
            "module.loss.dice_weight",
        } <= set(params)
        assert {"data.input_size", "data.crop_size"} & set(params), (
            "the search must cover the input/crop size"
        )
    else:
        assert len(params) >= 2
