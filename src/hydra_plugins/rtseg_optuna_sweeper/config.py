"""The sweeper's config (``hydra/sweeper: optuna``) and its pruner group
(``hydra/sweeper/pruner: median | hyperband | none``), registered in Hydra's ConfigStore when Hydra
scans its plugins. Nothing here imports Optuna. No ``from __future__ import annotations``: Hydra
executes plugin modules outside ``sys.modules``, where dataclasses cannot read string annotations."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class RtsegOptunaSweeperConf:
    _target_: str = "hydra_plugins.rtseg_optuna_sweeper.sweeper.RtsegOptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"pruner": "median"}])
    # null: a journal file, <sweep dir>/optuna.journal; a path: a journal file there; a URL
    # (sqlite:///..., postgresql://...): an Optuna RDB storage
    storage: Any = None
    study_name: Any = None
    direction: Any = "maximize"
    # trials this command runs (a rerun after an interruption runs what its first run left)
    n_trials: int = 20
    # trials launched at once (the launcher decides where: basic, joblib, submitit)
    n_jobs: int = 1
    max_failure_rate: float = 0.0
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler"})
    pruner: Any = None
    # what each trial reports to the pruner after every validation
    monitor: str = "val/miou"
    params: Any = None


PRUNERS = {
    "median": {
        "_target_": "optuna.pruners.MedianPruner",
        # trials that always run to the end before any is pruned
        "n_startup_trials": 2,
        # epochs a trial always trains before it can be pruned
        "n_warmup_steps": 1,
    },
    "hyperband": {
        "_target_": "optuna.pruners.HyperbandPruner",
        "min_resource": 1,
        "max_resource": "auto",
        "reduction_factor": 3,
    },
    "none": {"_target_": "optuna.pruners.NopPruner"},
}

cs = ConfigStore.instance()
cs.store(group="hydra/sweeper", name="optuna", node=RtsegOptunaSweeperConf, provider="rtseg")
for _name, _node in PRUNERS.items():
    cs.store(group="hydra/sweeper/pruner", name=_name, node=_node, provider="rtseg")
