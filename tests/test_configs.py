"""Every option of every config group composes, and the configs build what they claim to."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rtseg.utils.paths import CONF_DIR

GROUPS = [
    "data",
    "model",
    "module",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "debug",
    "experiment",
    "hparams_search",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes(compose_cfg, tmp_path, group, option):
    overrides = (
        [f"{group}={option}", "data.root=" + str(tmp_path)]
        if group == "data" and option != "synthetic"
        else [f"{group}={option}"]
    )
    cfg = compose_cfg(overrides=overrides)
    # everything but Hydra's own runtime values must resolve
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    assert container["task_name"]
    assert "_target_" in container["model"] and "_target_" in container["data"]


def test_config_groups_mirror_the_code():
    for group in (
        "data",
        "model",
        "module",
        "trainer",
        "logger",
        "callbacks",
        "experiment",
        "debug",
        "hparams_search",
        "local",
    ):
        assert (CONF_DIR / group).is_dir(), group
    src = Path(__file__).resolve().parents[1] / "src" / "rtseg"
    for package in ("data", "models", "bench", "realtime", "tracking"):
        assert (src / package / "__init__.py").is_file()


def test_default_config_builds_data_model_module_trainer(compose_cfg):
    cfg = compose_cfg(overrides=["trainer.max_epochs=1"])
    assert cfg.data.name == "synthetic" and cfg.model._target_.endswith("ThreeConvNet")
    dm = instantiate(cfg.data, _convert_="all")
    net = instantiate(cfg.model)
    module = instantiate(cfg.module, net=net, meta=dm.meta(), _convert_="all")
    assert module.hparams.num_classes == 7
    # optimizer and scheduler are partials: sweepable values, built by the module
    assert cfg.module.optimizer._partial_ and cfg.module.scheduler._partial_
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    assert trainer.max_epochs == 1
