"""A run folder is owned by one process (issue 36: two rtseg-train runs given one hydra.run.dir
rewrote each other's metrics.csv); a resume leaves no row of the epoch it runs again."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import lightning as L
import pytest

from rtseg.errors import FolderInUse
from rtseg.training.train import train
from rtseg.utils.paths import OWNER_FILE, owned_folder
from tests.support import run_cli

from ..conftest import FAST_TRAIN, TINY

HOLD = (
    "import sys, time\n"
    "from rtseg.utils.paths import owned_folder\n"
    "with owned_folder(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(600)\n"
)


def test_a_folder_has_one_owner_until_it_lets_go(tmp_path):
    with owned_folder(tmp_path):
        with pytest.raises(FolderInUse, match=rf"in use by another run \(pid {os.getpid()}\)"):
            with owned_folder(tmp_path):
                pass
    with owned_folder(tmp_path):  # released at the end of the block
        pass


@pytest.mark.timeout(240)
def test_a_second_train_in_a_taken_folder_is_one_line_naming_the_owner(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout.readline().strip() == "held"
        proc = run_cli(
            ["rtseg-train", *TINY, *FAST_TRAIN, "trainer.max_epochs=1", f"hydra.run.dir={run}"],
            check=False,
        )
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
        (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert line.startswith("error: ") and f"pid {owner.pid}" in line and str(run) in line
        assert "hydra.run.dir" in line
        assert not (run / "metrics.csv").exists() and not (run / "run.json").exists()
    finally:
        owner.kill()  # SIGKILL: no cleanup runs, the OS drops the lock
        owner.wait()
    assert (run / OWNER_FILE).exists()  # left behind, and harmless:
    with owned_folder(run):
        pass


class InterruptMidEpoch(L.Callback):
    """Ctrl-C at a given batch of a given epoch, after that epoch has logged some steps."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise KeyboardInterrupt


def _rows(path) -> list[dict]:
    return [{k: v for k, v in r.items() if v} for r in csv.DictReader(path.open())]


def test_resume_drops_the_aborted_epochs_rows(compose_cfg, tmp_path):
    base = [*TINY, *FAST_TRAIN, "trainer.max_epochs=3", "trainer.log_every_n_steps=1"]
    stop = [
        f"+callbacks.interrupt._target_={__name__}.InterruptMidEpoch",
        "+callbacks.interrupt.epoch=1",
        "+callbacks.interrupt.batch=3",
    ]
    with pytest.raises(SystemExit):
        train(compose_cfg(overrides=base + stop))
    run = tmp_path / "run"
    first = _rows(run / "metrics.csv")
    aborted = [r for r in first if r.get("epoch") == "1" and "train/loss_step" in r]
    assert aborted, "the interrupted epoch logged no step: the case is not exercised"
    train(compose_cfg(overrides=base))
    after = _rows(run / "metrics.csv")
    steps = [(r["epoch"], r["step"]) for r in after if "train/loss_step" in r]
    assert len(steps) == len(set(steps)), "a step logged twice"
    assert {e for e, _ in steps} == {"0", "1", "2"}
    assert sum("model/params" in r for r in after) == 1  # the model-cost row once
    kept = [r for r in first if r.get("epoch") != "1" or "train/loss_step" not in r]
    assert all(r in after for r in kept if r.get("epoch", "0") == "0")  # epoch 0 as it was
    assert [r for r in after if r in aborted] == [], "a row of the aborted session survived"
