"""hydra-submitit-launcher's ``SlurmLauncher``, waiting on its jobs with ``AccountingOrQueueWatcher``.

submitit keeps one state watcher for all SLURM jobs of a process, a class attribute of
``SlurmJob``; the launcher sets its own for the sweep it launches and puts submitit's back after,
so nothing else in the process sees the change. Everything else (the job array, the job
environment, ``checkpoint`` for submitit's requeue on a time-out signal) is the upstream
launcher's.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    SlurmLauncher as SubmititSlurmLauncher,
)


class SlurmLauncher(SubmititSlurmLauncher):
    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from submitit.slurm.slurm import SlurmJob

        from rtseg.tracking.slurm_status import AccountingOrQueueWatcher

        upstream = SlurmJob.watcher
        SlurmJob.watcher = AccountingOrQueueWatcher()
        try:
            return super().launch(job_overrides, initial_job_idx)
        finally:
            SlurmJob.watcher = upstream
