"""SLURM job states for submitit from ``sacct`` where the cluster keeps accounting, else ``squeue``.

submitit reads job states with ``sacct`` only. On a cluster without accounting storage (a small
lab cluster, the one-node cluster of the tests) every call fails ("Slurm accounting storage is
disabled"), is logged as "Bypassing sacct error ... status may be inaccurate", and the state stays
UNKNOWN: a job that ends without writing its result (``scancel``, out of memory, a node failure)
then looks unfinished forever and the sweep waits for it without end. This watcher asks ``sacct``
once and, when it fails, reads ``squeue --states=all`` from then on. ``squeue`` knows a job until
``MinJobAge`` (300 s by default) after its end, so it is asked at least every 30 s; a job it no
longer lists has left the queue: ``ENDED`` (done; its result file says how it went).
"""

from __future__ import annotations

import logging
import subprocess
import time

from submitit.slurm.slurm import SlurmInfoWatcher

log = logging.getLogger(__name__)

#: the state of a job that ``squeue`` no longer lists (any state but submitit's incomplete ones)
ENDED = "ENDED"


class AccountingOrQueueWatcher(SlurmInfoWatcher):
    """submitit's ``SlurmInfoWatcher`` with ``squeue`` in place of ``sacct`` once ``sacct`` fails."""

    def __init__(self, delay_s: int = 30) -> None:
        super().__init__(delay_s=delay_s)
        self.source = "sacct"  # becomes "squeue" at sacct's first failure

    def update(self) -> None:
        pending = self._registered - self._finished
        ids = sorted({x.split("_")[0] for x in pending})
        if not ids:
            return
        self._num_calls += 1
        if self.source == "sacct":
            try:
                out = subprocess.run(
                    ["sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", ",".join(ids)],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                out = subprocess.CompletedProcess([], 1, "", str(e))
            if out.returncode == 0:
                self._info_dict.update(self.read_info(out.stdout))
            else:
                self.source = "squeue"
                log.info(
                    "sacct unavailable (%s): job states read from squeue",
                    (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1],
                )
        if self.source == "squeue":
            self._info_dict.update(squeue_states(ids, pending))
        self._last_status_check = time.time()
        for job_id in pending:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)


def squeue_states(ids: list[str], registered: set[str]) -> dict[str, dict[str, str]]:
    """``{job id: {"JobID", "State", "NodeList"}}`` for the jobs ``squeue`` lists (``2_0``, and
    ``2_[1-3]`` expanded), and ``ENDED`` for the ``registered`` ones it does not list. Nothing
    when ``squeue`` itself cannot answer (the controller is down: states stay as they were)."""
    cmd = ["squeue", "--noheader", "--states=all", "--format=%i|%T|%N", "--jobs", ",".join(ids)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("squeue failed (%s): job states unchanged", e)
        return {}
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        log.warning(
            "squeue failed (%s): job states unchanged", out.stderr.strip() or out.returncode
        )
        return {}
    # the output of squeue in sacct's format, read by submitit's own parser (array ranges too)
    listed = SlurmInfoWatcher().read_info("JobID|State|NodeList\n" + out.stdout)
    gone = {j: {"JobID": j, "State": ENDED, "NodeList": ""} for j in registered if j not in listed}
    return {**gone, **listed}
