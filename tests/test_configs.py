"""Every option of every config group composes, and the configs build what they claim to."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rtseg.utils.paths import CONF_DIR

# every config group and where its objects live: a group mirrors the code it configures, so each
# _target_ under conf/<group>/ points into these modules (or the library the group wraps)
MIRROR = {
    "data": ("rtseg.data", "albumentations"),
    "model": ("rtseg.models", "segmentation_models_pytorch", "torchvision"),
    "module": ("rtseg.training", "torch.optim"),
    "callbacks": ("rtseg.training", "lightning.pytorch.callbacks"),
    "logger": ("rtseg.tracking", "lightning.pytorch.loggers"),
    "trainer": ("lightning",),
    "infer": ("rtseg.infer",),
    # the run-file redaction callback lives beside redact() itself
    "hydra": ("rtseg.tracking", "rtseg.utils.redact", "hydra"),
    "bench": ("rtseg.models",),
    "hparams_search": ("optuna",),
    "experiment": ("rtseg", "albumentations"),
    "debug": ("lightning",),
    "paths": (),
    "local": (),
    "teacher_targets": ("rtseg.training",),
}
# the groups a training config composes (each option is composed below)
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
    "teacher_targets",
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


def _targets(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["_target_"]] if isinstance(node.get("_target_"), str) else []
        return own + [t for v in node.values() for t in _targets(v)]
    if isinstance(node, list):
        return [t for v in node for t in _targets(v)]
    return []


def test_config_groups_mirror_the_code():
    import importlib

    import yaml

    groups = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())
    assert groups == sorted(MIRROR), "a config group without its code location in MIRROR (or gone)"
    for group, homes in MIRROR.items():
        for path in (CONF_DIR / group).rglob("*.yaml"):
            for target in _targets(yaml.safe_load(path.read_text()) or {}):
                if "${" in target:  # a name built by interpolation (e.g. a W&B group), not code
                    continue
                assert target.startswith(homes), f"{path}: {target} is not under {homes}"
                module, _, name = target.rpartition(".")
                assert hasattr(importlib.import_module(module), name), f"{path}: no {target}"


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
