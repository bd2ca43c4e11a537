"""``hydra/launcher=slurm`` against a real scheduler: a one-node SLURM cluster started from Debian's
packages for the module (skipped with its reason where it cannot start: not root, packages absent,
daemons failing), a 2-job sweep through it, and a job signalled before its time limit that is
requeued and resumes from its last.ckpt.

Marked slow (out of ``make test``): it starts daemons as root and its jobs take a minute. CI runs
it as its own step after installing the packages (``.ci/run``); by hand, as root:

    apt-get install -y slurmctld slurmd slurm-client munge
    .venv/bin/pytest -m slow tests/tracking/test_slurm.py
"""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import pytest

from ..support import BIN, REPO
from .conftest import TINY_CLI
from .slurm_cluster import ClusterUnavailable, OneNodeCluster, missing_reason

pytestmark = pytest.mark.slow

#: the issue's goal for the 2-job sweep on the one-node cluster
SWEEP_BUDGET_S = 120

# the reviewers' command, on tiny data (the jobs' own time is not what is measured here)
SLURM_ARGS = [
    "hydra/launcher=slurm",
    "model=baseline",
    "data=synthetic",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.partition=debug",
    "logger=csv",
    *TINY_CLI,
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    c = OneNodeCluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
    except (ClusterUnavailable, subprocess.CalledProcessError) as e:
        c.stop()
        pytest.skip(f"the one-node SLURM cluster did not start: {e}")
    yield c
    c.stop()


def sweep(cluster: OneNodeCluster, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "rtseg-train"), "-m", *SLURM_ARGS, *args],
        cwd=REPO,
        env={**cluster.env, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"the sweep did not end within {timeout} s:\n{out[-3000:]}")
    assert proc.returncode == 0, f"the sweep exited {proc.returncode}:\n{out[-4000:]}"
    return out


def wait_for_file(proc: subprocess.Popen, path: Path, timeout: float = 300) -> None:
    """Until a job of the running sweep has written ``path`` (it failing if the sweep ends)."""
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert proc.poll() is None, f"the sweep ended early:\n{proc.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, f"no {path.name} after {timeout:.0f} s"
        time.sleep(0.2)


def val_epochs(run: Path) -> list[int]:
    with (run / "metrics.csv").open() as f:
        return [int(r["epoch"]) for r in csv.DictReader(f) if r.get("val/miou")]


def test_two_job_sweep_finishes_within_two_minutes(cluster, tmp_path):
    sweep_dir = tmp_path / "sweep"
    t0 = time.time()
    out = finish(sweep(cluster, "trainer.max_epochs=1", "seed=1,2", f"hydra.sweep.dir={sweep_dir}"))
    end = time.time()
    wall = end - t0
    submitted = min(p.stat().st_mtime for p in sweep_dir.glob(".submitit/*/*_submission.sh"))
    results = max(p.stat().st_mtime for p in sweep_dir.glob(".submitit/*/*_result.pkl"))
    # where the time went: the command's start, the jobs (on the node), the summary after them
    split = (
        f"{submitted - t0:.0f} s to submit, {results - submitted:.0f} s of jobs, "
        f"{end - results:.0f} s from the last job's result to the end"
    )
    print(f"2-job SLURM sweep: {wall:.1f} s wall ({split})")

    for job in ("0", "1"):
        record = json.loads((sweep_dir / job / "run.json").read_text())
        assert record["status"] == "finished", record
        assert record["epochs"] == 1
    rows = [r for r in (sweep_dir / "summary.md").read_text().splitlines() if "| finished |" in r]
    assert len(rows) == 2, (sweep_dir / "summary.md").read_text()
    assert "Bypassing sacct error" not in out, "job states still polled through a failing sacct"
    assert wall < SWEEP_BUDGET_S, (
        f"2 one-epoch jobs took {wall:.0f} s ({split}), goal {SWEEP_BUDGET_S} s"
    )


def test_job_signalled_before_its_time_limit_resumes_at_the_next_epoch(cluster, tmp_path):
    """SIGUSR2 is what SLURM sends ``signal_delay_s`` before the time limit (``--signal``), sent
    here once the first epoch's last.ckpt exists. With a limit of 10 minutes or less submitit
    counts any such signal as a time-out, so this is the time-out path (``max_num_timeout``);
    SLURM's own signal would come at 8 minutes (a 5-minute limit signalled the resumed job again
    at 3 minutes, before it ended, on the loaded 2-core machine: requeued over and over)."""
    sweep_dir = tmp_path / "sweep"
    run = sweep_dir / "0"
    proc = sweep(
        cluster,
        "trainer.max_epochs=3",
        "seed=1",
        # epochs long enough to signal inside the second one
        "data.lengths.train=128",
        "hydra.launcher.timeout_min=10",
        f"hydra.sweep.dir={sweep_dir}",
    )
    wait_for_file(proc, run / "checkpoints" / "last.ckpt")
    job_id = cluster.run("squeue", "-h", "-o", "%i").stdout.split()[0]
    cluster.run("scancel", "--signal=USR2", job_id)
    out = finish(proc)

    logs = "".join(p.read_text() for p in (sweep_dir / ".submitit").glob("*/*_log.*"))
    assert "Requeued job" in logs, logs[-3000:]
    assert "resuming the interrupted run from" in (run / "train.log").read_text()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "finished" and record["epochs"] == 3, record
    # resumed at the epoch after its checkpoint: each epoch validated once, none lost or repeated
    assert val_epochs(run) == [0, 1, 2], (run / "metrics.csv").read_text()
    assert "| finished |" in (sweep_dir / "summary.md").read_text(), out[-2000:]


def test_job_cancelled_without_a_result_ends_the_sweep(cluster, tmp_path):
    """A job that ends without writing its result (``scancel``; out of memory, a node failure)
    ends the sweep with an error. With states from a failing ``sacct`` it stayed UNKNOWN, and the
    launcher waited for it without end."""
    sweep_dir = tmp_path / "sweep"
    proc = sweep(cluster, "trainer.max_epochs=50", "seed=1", f"hydra.sweep.dir={sweep_dir}")
    wait_for_file(proc, sweep_dir / "0" / "run.json")
    job_id = cluster.run("squeue", "-h", "-o", "%i").stdout.split()[0]
    cluster.run("scancel", job_id)
    cancelled = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the sweep still waits for its cancelled job 180 s after scancel")
    print(f"sweep ended {time.monotonic() - cancelled:.0f} s after scancel")
    assert proc.returncode != 0
    assert "has not produced any output (state: CANCELLED" in out, out[-3000:]
