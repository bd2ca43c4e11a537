"""A one-node SLURM cluster for tests, from Debian's packages (``slurmctld slurmd slurm-client
munge``): its own munge key and socket, slurm.conf, state and logs in one folder, daemons in the
foreground as children of the test process (stopped by ``stop``), ports picked free, so it runs
beside a system SLURM or munge without touching them. Clients reach it through ``SLURM_CONF``.

Needs root: slurmd starts jobs as their submitting user, which only root can do.
``cred_expire=30`` (default 120 s) is also how long a requeued job waits before it starts again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")

SLURM_CONF = """\
ClusterName=rtsegtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge/munge.sock,cred_expire=30
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class ClusterUnavailable(RuntimeError):
    """Why this machine cannot run the cluster (the test skips with it)."""


def missing_reason() -> str | None:
    """Why a cluster cannot start here, checked before anything is started; None when it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a SLURM cluster needs root (slurmd starts jobs as their user)"
    absent = [c for c in DAEMONS + CLIENTS if shutil.which(c) is None]
    if absent:
        return (
            f"SLURM/munge commands absent ({', '.join(absent)}): as root, "
            "apt-get install -y slurmctld slurmd slurm-client munge"
        )
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OneNodeCluster:
    """``start()`` writes the config and starts munged, slurmctld and slurmd, waiting until the
    node is idle; ``env`` is what a client needs (``SLURM_CONF``); ``stop()`` cancels every job
    and stops the daemons."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.conf = self.dir / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check)

    def start(self) -> OneNodeCluster:
        munge = self.dir / "munge"
        for d in (munge, self.dir / "state", self.dir / "spool"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(munge, 0o700)
        key = munge / "munge.key"
        subprocess.run(["mungekey", "-c", "-f", "-k", str(key)], check=True, capture_output=True)
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 512
        self.conf.write_text(
            SLURM_CONF.format(
                host=self.host,
                dir=self.dir,
                ctld_port=free_port(),
                d_port=free_port(),
                mem_mb=mem_mb,
            )
        )
        self._spawn(
            "munged",
            ["munged", "-F", "-f", f"--key-file={key}", f"--socket={munge}/munge.sock"]
            + [f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log"]
            + [f"--seed-file={munge}/munged.seed"],
            ready=lambda: (munge / "munge.sock").exists(),
        )
        self._spawn(
            "slurmctld",
            ["slurmctld", "-D", "-i", "-f", str(self.conf)],
            ready=lambda: self.run("scontrol", "ping", check=False).stdout.count("UP") > 0,
        )
        self._spawn(
            "slurmd",
            ["slurmd", "-D", "-f", str(self.conf), "-N", self.host],
            ready=lambda: self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip() == "idle",
        )
        return self

    def _spawn(self, name: str, cmd: list[str], ready, timeout: float = 30.0) -> None:
        log = (self.dir / f"{name}.out").open("w")
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                break
            if ready():
                return
            time.sleep(0.2)
        tail = self._log_tail(name)
        raise ClusterUnavailable(f"{name} did not start within {timeout:.0f} s: {tail}")

    def _log_tail(self, name: str) -> str:
        for path in (self.dir / f"{name}.log", self.dir / f"{name}.out"):
            if path.is_file() and path.read_text().strip():
                return " | ".join(path.read_text().strip().splitlines()[-3:])
        return "no log"

    def stop(self) -> None:
        """Cancel every job (their processes end with them), then stop slurmd, slurmctld and
        munged (SIGTERM, SIGKILL after 15 s)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--partition=debug", check=False)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                out = self.run("squeue", "-h", "-o", "%i", check=False)
                if out.returncode != 0 or not out.stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def job_state(self, job_id: str) -> str:
        """The job's state as squeue shows it ('' once it has left the queue)."""
        out = self.run("squeue", "-h", "-t", "all", "-o", "%T", "-j", job_id, check=False)
        return out.stdout.strip()
