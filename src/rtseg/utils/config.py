"""Hydra helpers: the run folder, the running job's context, composing configs, instantiating groups."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rtseg.utils.paths import CONF_DIR

_UID = secrets.token_hex(2)


def register_resolvers() -> None:
    """``${rtseg.uid:}``: a per-process token that keeps run folders unique within one second;
    ``${rtseg.help_groups:NAME}``: the config groups a command takes, for its ``--help``."""
    if not OmegaConf.has_resolver("rtseg.uid"):
        OmegaConf.register_new_resolver("rtseg.uid", lambda: f"{os.getpid()}{_UID}")
    if not OmegaConf.has_resolver("rtseg.help_groups"):
        OmegaConf.register_new_resolver("rtseg.help_groups", help_groups)


def command_groups(config_name: str) -> set[str]:
    """The config groups a primary config's defaults list names (``data``, ``model``, ...): the only
    ones its command takes on the command line (``rtseg.utils.cli.check_overrides``), ``hydra``
    aside."""
    import yaml

    path = CONF_DIR / f"{config_name}.yaml"
    defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults") if path.is_file() else None
    found = set()
    for entry in defaults or []:
        if isinstance(entry, dict):
            for key in entry:
                name = key.replace("optional", "").replace("override", "").strip().lstrip("/")
                found.add(name.split("/")[0])
    return found


def help_groups(config_name: str) -> str:
    """``group: option, option`` lines (sub-groups too: ``data/augment``) of the groups a command
    takes, as its ``--help`` lists them (conf/hydra/help/)."""
    lines = []

    def visit(group: str) -> None:
        folder = CONF_DIR / group
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        if options:
            lines.append(f"  {group}: {', '.join(options)}")
        for sub in sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] != "_"):
            visit(f"{group}/{sub}")

    for group in sorted(command_groups(str(config_name)) - {"hydra"}):
        if (CONF_DIR / group).is_dir():
            visit(group)
    return "\n".join(lines)


def output_dir(cfg: DictConfig) -> Path:
    """The run folder: Hydra's when running under Hydra, else ``paths.output_dir`` (compose API)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


def hydra_context() -> dict:
    """Overrides, sweep folder and group choices of the running Hydra job (empty under compose)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {"overrides": [], "sweep_dir": None, "choices": {}}
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return {
        "overrides": list(hc.overrides.task),
        "sweep_dir": str(Path(hc.sweep.dir).resolve()) if multirun else None,
        "choices": dict(hc.runtime.choices),
    }


def compose_config(config_name: str, overrides: list[str] | None = None, hydra: bool = False):
    """The config an entrypoint would see, composed with Hydra's API (notebooks, tests).

    ``hydra=True`` keeps the ``hydra`` node (callbacks, group choices). Hydra's global state is
    cleared before and after, so calls never leak into each other.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(
                config_name=config_name, overrides=list(overrides or []), return_hydra_config=hydra
            )
    finally:
        GlobalHydra.instance().clear()


def instantiate_all(group: DictConfig | None) -> list:
    """One object per entry of a config group such as ``logger`` or ``callbacks``; entries set to
    null (or without ``_target_``) are switched off."""
    from hydra.utils import instantiate

    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def to_container(cfg: DictConfig | dict) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
