"""Optuna studies that persist: storage, trial ownership and the pruning callback.

Used by the project's Hydra sweeper (``src/hydra_plugins/rtseg_optuna_sweeper``) in the sweep's
process and by ``OptunaPruning`` inside each trial's job. Optuna is imported lazily: it comes with
the ``sweeps`` extra.

- Storage: a path is a journal file (``optuna.journal`` in the sweep folder by default: several
  processes append to it under a file lock), anything with ``://`` an Optuna RDB URL
  (``sqlite:///study.db``, ``postgresql://...``).
- Ownership: every trial records who asked for it (``rtseg_owner``: host, pid, process start
  time); a RUNNING trial whose owner is gone was interrupted: it is failed and its parameters
  re-queued, so a rerun of the same command continues the study.
- Pruning: the sweeper puts ``RTSEG_OPTUNA_TRIAL`` (storage, study, trial id) in the job's
  environment and adds ``callbacks.optuna_pruning``; the callback reports ``val/miou`` after each
  validation and stops the fit when the study's pruner says so (the run record says ``pruned``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

log = logging.getLogger("rtseg.optuna")

TRIAL_ENV = "RTSEG_OPTUNA_TRIAL"
OWNER_ATTR = "rtseg_owner"
WORKER_ATTR = "rtseg_worker"
PRUNER_ATTR = "rtseg_pruner"
PRUNED_ATTR = "rtseg_pruned_at_epoch"
INTERRUPTED_ATTR = "rtseg_interrupted"


def open_storage(storage: str | Path):
    """An Optuna storage: a journal file for a path, an RDB storage for a URL."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    text = str(storage)
    if "://" in text:
        return optuna.storages.RDBStorage(text)
    path = Path(text).expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def storage_text(storage: str | Path) -> str:
    """The storage as a job (another process) reopens it: URLs as given, paths made absolute."""
    text = str(storage)
    return text if "://" in text else str(Path(text).expanduser().absolute())


def this_process() -> dict:
    import psutil

    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": psutil.Process().create_time(),
    }


def process_gone(owner: dict | None) -> bool:
    """True when ``owner`` (``this_process()`` of another process) ran on this host and has ended.
    A process on another host is taken as alive: only its own host can tell."""
    import psutil

    if not owner or owner.get("host") != socket.gethostname():
        return False
    try:
        proc = psutil.Process(int(owner["pid"]))
        return abs(proc.create_time() - float(owner.get("started", 0))) > 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, KeyError):
        return True


def requeue_orphans(study) -> list[int]:
    """Fail every RUNNING trial whose owner process has ended and enqueue its parameters again.
    Returns the numbers of the trials re-queued."""
    from optuna.trial import TrialState

    requeued = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not process_gone(t.user_attrs.get(OWNER_ATTR)):
            continue
        fail_and_requeue(study, t._trial_id, t.number, t.params)
        requeued.append(t.number)
    return requeued


def fail_and_requeue(study, trial_id: int, number: int, params: dict) -> None:
    from optuna.trial import TrialState

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, INTERRUPTED_ATTR, True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except Exception as e:  # noqa: BLE001 - another worker finished or failed it meanwhile
        log.warning("trial %d: could not mark it failed: %s", number, e)
        return
    if params:
        study.enqueue_trial(params, user_attrs={"rtseg_requeued_from": number})
    log.info("trial %d was interrupted: failed, its parameters queued again", number)


class OptunaPruning(Callback):
    """Report ``monitor`` after each validation to the Optuna trial named by ``RTSEG_OPTUNA_TRIAL``
    and stop the fit when the study's pruner prunes it (the run ends normally, its record marked
    ``pruned``). Without that variable (a run outside an Optuna sweep) it does nothing."""

    def __init__(self, monitor: str = "val/miou"):
        self.monitor = monitor
        spec = os.environ.get(TRIAL_ENV)
        self.spec = json.loads(spec) if spec else None
        self._trial = None

    def trial(self):
        if self._trial is None and self.spec is not None:
            import optuna
            from hydra.utils import instantiate

            storage = open_storage(self.spec["storage"])
            study = optuna.load_study(study_name=self.spec["study_name"], storage=storage)
            pruner_cfg = study.user_attrs.get(PRUNER_ATTR)
            study.pruner = instantiate(pruner_cfg) if pruner_cfg else optuna.pruners.NopPruner()
            self._trial = optuna.trial.Trial(study, int(self.spec["trial_id"]))
        return self._trial

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.spec is None or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        trial = self.trial()
        epoch = int(trainer.current_epoch)
        trial.report(float(value), step=epoch)
        if trial.should_prune():
            trial.set_user_attr(PRUNED_ATTR, epoch)
            for cb in trainer.callbacks:
                record = getattr(cb, "record", None)
                if record is not None and hasattr(record, "extra"):
                    record.extra["pruned_at_epoch"] = epoch
            log.info(
                "trial %d pruned after epoch %d (%s %.4f)",
                trial.number,
                epoch,
                self.monitor,
                float(value),
            )
            trainer.should_stop = True


def owner_attrs() -> dict[str, Any]:
    return {OWNER_ATTR: this_process()}
