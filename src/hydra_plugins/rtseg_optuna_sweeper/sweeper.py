"""The Sweeper: one Optuna study per sweep folder (or storage URL), resumable and shared.

- The study is loaded if it exists (``load_if_exists``), so the same command again continues it.
- Each command is a *worker* with a quota of ``n_trials``; its record (study user attribute
  ``rtseg_worker:<id>``) holds its process. A rerun on the same host takes over a worker whose
  process has ended before finishing its quota (the interrupted command resumed); otherwise it is
  a new worker (two commands at once: 2 x ``n_trials`` trials). Optuna numbers the trials, so
  workers never share a number.
- Trials are asked in batches of ``n_jobs`` and launched by Hydra's launcher; each job's folder
  is ``<sweep dir>/<trial number>``.
- A trial interrupted with its command (Ctrl-C, SIGTERM, a killed process) is failed and its
  parameters queued again, now or by the next run.
"""

from __future__ import annotations

import fcntl
import json
import logging
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from . import config as _config  # noqa: F401 - registers the configs

log = logging.getLogger("rtseg.optuna")

WORKER_PREFIX = "rtseg_worker:"
PRUNING_OVERRIDE = (
    "++callbacks.optuna_pruning._target_=rtseg.tracking.optuna_study.OptunaPruning",
)


def distribution(override: Override):
    """An Optuna distribution for a sweep override (choice/range/interval, tag(log, ...))."""
    import optuna.distributions as d

    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and not _int_range(value)):
        choices = [x for x in override.sweep_string_iterator()]
        return d.CategoricalDistribution([_plain(c) for c in choices])
    if isinstance(value, RangeSweep):
        step = int(value.step)
        stop = int(value.stop)
        high = int(value.start) + step * ((stop - int(value.start) - 1) // step)
        return d.IntDistribution(int(value.start), high, step=step)
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return d.IntDistribution(value.start, value.end, log=log_scale)
        return d.FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{override.input_line}: not a search space Optuna can sample")


def _int_range(value: RangeSweep) -> bool:
    return all(float(x).is_integer() for x in (value.start, value.stop, value.step))


def _plain(text: str):
    """A choice as Optuna stores it: numbers as numbers, everything else as its override text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class RtsegOptunaSweeper(Sweeper):
    def __init__(
        self,
        storage: Any = None,
        study_name: Any = None,
        direction: Any = "maximize",
        n_trials: int = 20,
        n_jobs: int = 1,
        max_failure_rate: float = 0.0,
        sampler: Any = None,
        pruner: Any = None,
        monitor: str = "val/miou",
        params: Any = None,
    ):
        self.storage = storage
        self.study_name = study_name
        self.direction = direction
        self.n_trials = int(n_trials)
        self.n_jobs = max(1, int(n_jobs))
        self.max_failure_rate = float(max_failure_rate)
        self.sampler = sampler
        self.pruner = pruner
        self.monitor = monitor
        self.params = params
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        # Hydra instantiated the nested _target_s already: keep their configs (the sampler's seed
        # is moved per worker; the pruner's config travels to the trials through the study)
        self.sampler = config.hydra.sweeper.get("sampler")
        self.pruner = config.hydra.sweeper.get("pruner")
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # -- the search space -------------------------------------------------------------------
    def search_space(self, arguments: list[str]) -> tuple[dict, list[str]]:
        lines = []
        if self.params:
            for k, v in (
                OmegaConf.to_container(self.params, resolve=True).items()
                if isinstance(self.params, DictConfig)
                else dict(self.params).items()
            ):
                lines.append(f"{k}={v}")
        lines.extend(arguments)  # the command line's sweeps join (and replace) the config's
        space: dict[str, Any] = {}
        fixed: dict[str, str] = {}
        for override in OverridesParser.create().parse_overrides(lines):
            key = override.get_key_element()
            space.pop(key, None)
            fixed.pop(key, None)
            if override.is_sweep_override():
                space[key] = distribution(override)
            else:
                fixed[key] = override.get_value_element_as_str()
        return space, [f"{k}={v}" for k, v in fixed.items()]

    # -- the study ----------------------------------------------------------------------------
    def open_study(self, sweep_dir: Path):
        import optuna
        from hydra.utils import instantiate

        from rtseg.tracking.optuna_study import PRUNER_ATTR, open_storage, storage_text

        self.storage_text = storage_text(self.storage or sweep_dir / "optuna.journal")
        pruner_cfg = (
            OmegaConf.to_container(self.pruner, resolve=True)
            if isinstance(self.pruner, DictConfig)
            else self.pruner
        )
        directions = self.direction
        if isinstance(directions, str):
            directions = [directions]
        directions = [str(x).lower().replace("studydirection.", "") for x in directions]
        study = optuna.create_study(
            storage=open_storage(self.storage_text),
            study_name=str(self.study_name) if self.study_name else "rtseg",
            directions=directions,
            pruner=instantiate(pruner_cfg) if pruner_cfg else optuna.pruners.NopPruner(),
            load_if_exists=True,
        )
        if pruner_cfg and study.user_attrs.get(PRUNER_ATTR) != pruner_cfg:
            study.set_user_attr(PRUNER_ATTR, pruner_cfg)
        return study

    def claim_worker(self, study, lock: Path) -> str:
        """This command's worker id: an ended, unfinished worker of this host taken over, or a new one."""
        from rtseg.tracking.optuna_study import process_gone, this_process

        me = this_process()
        with _locked(lock):
            for key, rec in sorted(study.user_attrs.items()):
                if key.startswith(WORKER_PREFIX) and not rec.get("done"):
                    if process_gone(rec.get("process")):
                        worker = key[len(WORKER_PREFIX) :]
                        log.info("resuming worker %s of study %s", worker, study.study_name)
                        break
            else:
                worker = uuid.uuid4().hex[:8]
            study.set_user_attr(
                WORKER_PREFIX + worker, {"process": me, "n_trials": self.n_trials, "done": False}
            )
        return worker

    def sampler_for(self, study, worker: str):
        """The configured sampler, its seed moved by the worker and the trials already in the
        study, so workers and resumed runs do not draw the same random startup trials again."""
        from hydra.utils import instantiate

        cfg = self.sampler
        if cfg is None:
            return None
        cfg = (
            OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        )
        if cfg.get("seed") is not None:
            cfg["seed"] = int(cfg["seed"]) + int(worker, 16) % 100_003 + len(study.trials)
        return instantiate(cfg)

    # -- the loop -----------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> Any:
        from optuna.trial import TrialState

        from rtseg.tracking import optuna_study as ostudy

        assert self.config is not None and self.launcher is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        space, fixed = self.search_space(arguments)
        lock = sweep_dir / ".optuna.lock"
        with _locked(lock):  # two commands started at once create the study once
            study = self.open_study(sweep_dir)
            requeued = ostudy.requeue_orphans(study)
        if requeued:
            log.info("re-queued interrupted trials %s", requeued)
        worker = self.claim_worker(study, lock)
        sampler = self.sampler_for(study, worker)
        if sampler is not None:
            study.sampler = sampler
        log.info(
            "study %s in %s: worker %s, %d trials, %d at a time",
            study.study_name,
            self.storage_text,
            worker,
            self.n_trials,
            self.n_jobs,
        )
        failures = launched = 0
        while True:
            mine = [
                t
                for t in study.get_trials(deepcopy=False)
                if t.user_attrs.get(ostudy.WORKER_ATTR) == worker
                and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
                and not t.user_attrs.get(ostudy.INTERRUPTED_ATTR)
            ]
            remaining = self.n_trials - len(mine)
            if remaining <= 0:
                break
            batch = []
            for _ in range(min(self.n_jobs, remaining)):
                trial = study.ask(fixed_distributions=space)
                trial.set_user_attr(ostudy.WORKER_ATTR, worker)
                trial.set_user_attr(ostudy.OWNER_ATTR, ostudy.this_process())
                batch.append(trial)
            told: set[int] = set()
            try:
                for group in _consecutive(batch):
                    returns = self.launcher.launch(
                        [self.job_overrides(t, fixed) for t in group],
                        initial_job_idx=group[0].number,
                    )
                    for trial, ret in zip(group, returns, strict=True):
                        launched += 1
                        failures += not self.tell(study, trial, ret)
                        told.add(trial.number)
            except BaseException:
                for t in batch:
                    if t.number not in told:
                        ostudy.fail_and_requeue(study, t._trial_id, t.number, t.params)
                raise
            if launched and failures / launched > self.max_failure_rate:
                raise RuntimeError(
                    f"{failures} of {launched} trials failed, more than max_failure_rate="
                    f"{self.max_failure_rate}"
                )
        rec = study.user_attrs.get(WORKER_PREFIX + worker) or {}
        study.set_user_attr(WORKER_PREFIX + worker, {**rec, "done": True})
        self.write_results(study, sweep_dir)
        return study

    def job_overrides(self, trial, fixed: list[str]) -> tuple[str, ...]:
        from rtseg.tracking.optuna_study import TRIAL_ENV

        spec = json.dumps(
            {
                "storage": self.storage_text,
                "study_name": trial.study.study_name,
                "trial_id": trial._trial_id,
                "number": trial.number,
            }
        )
        sampled = [f"{k}={v}" for k, v in trial.params.items()]
        env = f"++hydra.job.env_set.{TRIAL_ENV}='{_quoted(spec)}'"
        monitor = f"++callbacks.optuna_pruning.monitor={self.monitor}"
        return (*fixed, *sampled, *PRUNING_OVERRIDE, monitor, env)

    def tell(self, study, trial, ret) -> bool:
        """Record one job's outcome in the study; False when the trial failed."""
        from optuna.trial import TrialState

        from rtseg.tracking.optuna_study import PRUNED_ATTR

        try:
            value = ret.return_value
        except Exception as e:  # noqa: BLE001 - the job's own error, already logged by Hydra
            log.warning("trial %d failed: %s", trial.number, e)
            study.tell(trial, state=TrialState.FAIL)
            return False
        fresh = study._storage.get_trial(trial._trial_id)
        if PRUNED_ATTR in fresh.user_attrs:
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d pruned (epoch %s)", trial.number, fresh.user_attrs[PRUNED_ATTR])
            return True
        if value is None:
            log.warning("trial %d returned no value", trial.number)
            study.tell(trial, state=TrialState.FAIL)
            return False
        study.tell(trial, value)
        log.info("trial %d: %s", trial.number, value)
        return True

    def write_results(self, study, sweep_dir: Path) -> None:
        from optuna.trial import TrialState

        from rtseg.utils.paths import write_atomic

        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        counts = {
            s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
            for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        }
        results: dict[str, Any] = {
            "name": "optuna",
            "study_name": study.study_name,
            "storage": self.storage_text,
            "trials": counts,
        }
        if done and len(study.directions) == 1:
            best = study.best_trial
            results.update(best_trial=best.number, best_params=best.params, best_value=best.value)
        elif done:
            results["solutions"] = [
                {"params": t.params, "values": t.values} for t in study.best_trials
            ]
        write_atomic(
            sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(OmegaConf.create(results))
        )
        log.info("optimization results: %s", sweep_dir / "optimization_results.yaml")


def _consecutive(trials: list) -> list[list]:
    """Runs of consecutive trial numbers: a launcher numbers jobs from its first index on."""
    groups: list[list] = []
    for t in sorted(trials, key=lambda t: t.number):
        if groups and groups[-1][-1].number + 1 == t.number:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")
