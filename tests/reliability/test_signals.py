"""Signals end every command with one line and 128 + the signal (issue 36): SIGTERM (what SLURM and
Kubernetes send before a kill) saves a training run like Ctrl-C, records it `interrupted` and exits
143, and the same command resumes; Ctrl-C in rtseg-bench and rtseg-export is 130 and one line, not a
KeyboardInterrupt traceback. The mapping lives in one place: ``rtseg.utils.cli``'s guard."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import lightning as L
import pytest

from rtseg.utils.cli import user_errors_as_one_line
from tests.support import BIN, REPO, read_lines, wait_for

from ..conftest import FAST_TRAIN, TINY

ENV = {
    **os.environ,
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "WANDB_MODE": "offline",
    "PYTHONPATH": str(REPO),  # the Steps callback below, imported by the training process
}


class Steps(L.Callback):
    """Prints ``step EPOCH BATCH`` after each training batch and slows it, so a signal can be sent
    mid-epoch at a known point."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        print(f"step {trainer.current_epoch} {batch_idx}", flush=True)
        time.sleep(0.2)


def _interruptible() -> None:
    """SIGINT back to its default in the child: a test run started as a shell's background job
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt (the command would run
    to its end and exit 0 whatever it does with Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _popen(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / args[0]), *args[1:]],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_interruptible,
    )


def _finish(proc: subprocess.Popen, timeout: float = 120) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(400)
def test_sigterm_saves_like_ctrl_c_exits_143_and_the_rerun_resumes(tmp_path):
    run = tmp_path / "run"
    command = [
        "rtseg-train",
        *TINY,
        *FAST_TRAIN,
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=1",
        f"+callbacks.steps._target_={__name__}.Steps",
        f"hydra.run.dir={run}",
    ]
    proc = _popen(command)
    lines = read_lines(proc)
    wait_for(lines, proc, "step 1 1", timeout=240)  # epoch 0 saved in last.ckpt, epoch 1 running
    proc.send_signal(signal.SIGTERM)
    code = _finish(proc)
    out = "".join(lines)
    assert code == 143, out[-3000:]  # 128 + SIGTERM (Ctrl-C stays 130)
    assert "interrupted: rerun the same command to resume" in out
    assert "Traceback" not in out, out[-3000:]
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted", record.get("error")

    again = _popen(command)
    lines = read_lines(again)
    assert _finish(again, timeout=240) == 0, "".join(lines)[-3000:]
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    rows = [r for r in csv.DictReader((run / "metrics.csv").open()) if r.get("train/loss_step")]
    steps = [(r["epoch"], r["step"]) for r in rows]
    assert len(steps) == len(set(steps)), "a step logged twice"  # the aborted epoch's rows went
    assert {e for e, _ in steps} == {"0", "1", "2"}


@pytest.mark.timeout(400)
def test_sigterm_to_every_process_of_the_job_with_loader_workers_is_an_interruption(tmp_path):
    """SLURM's scancel and time limit signal every process of the job, DataLoader workers
    included: the run is still saved, `interrupted` and 143, not a crash of a killed worker."""
    run = tmp_path / "run"
    command = [
        "rtseg-train", *TINY, *FAST_TRAIN, "data.num_workers=1", "trainer.max_epochs=3",
        "trainer.log_every_n_steps=1", f"+callbacks.steps._target_={__name__}.Steps",
        f"hydra.run.dir={run}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [str(BIN / command[0]), *command[1:]], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines = read_lines(proc)
    wait_for(lines, proc, "step 1 1", timeout=240)
    os.killpg(proc.pid, signal.SIGTERM)  # the job's whole process group, as slurmstepd does
    code = _finish(proc)
    out = "".join(lines)
    assert code == 143, out[-3000:]
    assert "Traceback" not in out and "killed by signal" not in out, out[-3000:]
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_a_process_with_live_loader_workers_still_exits():
    """At exit multiprocessing ends daemonic workers with SIGTERM and waits for them: a worker
    that ignored SIGTERM (the first form of the fix above) hung every such exit."""
    code = """
import torch
from torch.utils.data import DataLoader
from rtseg.data.datamodule import init_worker
loader = DataLoader(list(range(8)), batch_size=2, num_workers=1, persistent_workers=True,
                    worker_init_fn=init_worker)
it = iter(loader)
print(next(it).tolist(), flush=True)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0 and "[0, 1]" in out.stdout, out.stderr[-2000:]


def _ctrl_c_once_working(args: list[str], run) -> tuple[int, str]:
    """Start a command, Ctrl-C it once its task runs (Hydra wrote the run folder's config, then
    a moment), and return its exit code and output."""
    proc = _popen([*args, f"hydra.run.dir={run}"])
    lines = read_lines(proc)
    deadline = time.time() + 120
    while not (run / ".hydra" / "config.yaml").exists():
        assert proc.poll() is None and time.time() < deadline, "".join(lines)
        time.sleep(0.05)
    time.sleep(3)
    assert proc.poll() is None, "".join(lines)  # still working: the case is exercised
    proc.send_signal(signal.SIGINT)
    return _finish(proc), "".join(lines)


@pytest.mark.timeout(300)
def test_ctrl_c_in_bench_is_130_and_one_line(tmp_path, tiny_ckpt):
    code, out = _ctrl_c_once_working(
        [
            "rtseg-bench",
            f"checkpoint={tiny_ckpt}",
            "backends=[eager]",
            "threads=[1]",
            "measure.min_seconds=600",
            "peak.enabled=false",
            "e2e=false",
            "plots=false",
        ],
        tmp_path / "run",
    )
    assert code == 130, out[-3000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]
    assert "interrupted by Ctrl-C (SIGINT): stopped" in out.splitlines()[-1]


@pytest.mark.timeout(300)
def test_ctrl_c_in_export_is_130_one_line_and_leaves_no_file(tmp_path):
    out_dir = tmp_path / "out"
    code, out = _ctrl_c_once_working(
        ["rtseg-export", "checkpoint=camvid", f"out_dir={out_dir}"], tmp_path / "run"
    )
    assert code == 130, out[-3000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]
    assert "interrupted by Ctrl-C (SIGINT): stopped" in out.splitlines()[-1]
    assert not out_dir.exists() or not [p for p in out_dir.iterdir() if not p.name.startswith(".")]


def test_the_guard_maps_signals_to_codes_and_restores_the_handler(capsys):
    @user_errors_as_one_line
    def ctrl_c():
        raise KeyboardInterrupt

    @user_errors_as_one_line
    def terminated():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        ctrl_c()
    assert stopped.value.code == 130
    with pytest.raises(SystemExit) as stopped:
        terminated()
    assert stopped.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is before
    err = capsys.readouterr().err.splitlines()
    assert err == ["interrupted by Ctrl-C (SIGINT): stopped", "interrupted by SIGTERM: stopped"]
    if sys.platform != "win32":
        assert before is signal.SIG_DFL


def test_stop_at_once_does_not_wait_for_a_stuck_thread():
    """What a second Ctrl-C asks for: the line, 128 + the signal, now, though a worker thread is
    stuck (a sys.exit there waited for it forever: issue 36's 1000-thread realtime run)."""
    code = (
        "import threading, time\n"
        "from rtseg.utils.cli import stop_at_once\n"
        "threading.Thread(target=time.sleep, args=(600,)).start()  # not a daemon\n"
        "stop_at_once(2, 'error: interrupted twice: stopped at once')\n"
    )
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=ENV
    )
    assert proc.returncode == 130 and time.time() - t0 < 30
    assert proc.stderr.strip() == "error: interrupted twice: stopped at once"


@pytest.mark.timeout(300)
def test_ctrl_c_twice_stops_realtime_at_once(tmp_path):
    """The second Ctrl-C lands while the model still loads (an ONNX export of the shipped model,
    seconds): the run stops there, with one line and 130."""
    proc = _popen(
        [
            "rtseg-realtime",
            "source=synthetic",
            "synthetic.live=true",
            "synthetic.frames=null",
            "checkpoint=camvid",
            "backend=onnxruntime",
            "threads=1",
            "sink=none",
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    lines = read_lines(proc)
    deadline = time.time() + 120
    while not (tmp_path / "run" / ".hydra" / "config.yaml").exists():
        assert proc.poll() is None and time.time() < deadline, "".join(lines)
        time.sleep(0.05)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    wait_for(lines, proc, "SIGINT: stopping the source")
    proc.send_signal(signal.SIGINT)
    assert _finish(proc, timeout=60) == 130, "".join(lines)[-3000:]
    out = "".join(lines)
    assert "Traceback" not in out, out[-3000:]
    assert out.rstrip().splitlines()[-1] == "error: interrupted twice: stopped at once", out[-3000:]
