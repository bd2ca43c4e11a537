"""trainer=ddp on 2 CPU processes (gloo): the val mIoU is synced over ranks and logged once.

Lightning's ``ddp`` strategy re-launches the command for rank 1, so it runs through the console
script in a subprocess. A single-process evaluation of the saved checkpoint on the whole val
split must give the val mIoU that DDP logged: each rank saw half of the images, so that only
holds when the confusion matrices were summed across ranks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rtseg.tracking.runs import RunRecord
from rtseg.training.eval import evaluate
from rtseg.utils.config import compose_config
from rtseg.utils.paths import REPO_ROOT

DATA = [
    "data=synthetic",
    "data.lengths.train=32",
    "data.lengths.val=16",
    "data.lengths.test=16",
    "data.input_size=[64,80]",
]


@pytest.mark.slow
def test_ddp_two_cpu_processes_log_val_miou_once(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        str(Path(sys.executable).parent / "rtseg-train"),
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.max_epochs=1",
        *DATA,
        "data.batch_size=8",
        "data.val_batch_size=4",
        "threads=1",
        "callbacks.progress_bar=null",
        "callbacks.model_cost.latency_min_runs=2",
        "callbacks.model_cost.latency_min_seconds=0",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"}
    proc = subprocess.Popen(
        args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out[-4000:]
    assert "distributed_backend=gloo" in out and "Starting with 2 processes" in out, out[-4000:]

    metrics = pd.read_csv(run_dir / "metrics.csv")
    val = metrics.dropna(subset=["val/miou"])
    assert len(val) == 1, f"val/miou logged {len(val)} times for one epoch"
    logged = float(val["val/miou"].iloc[0])

    record = RunRecord.load(run_dir / "run.json")
    assert record.pid == proc.pid, "the run record was written by another process than rank 0"
    assert record.status == "finished" and record.params, "rank 1 overwrote rank 0's record"
    assert record.val_miou_best == pytest.approx(logged, abs=1e-6)
    assert out.count("val mIoU (best)") == 1, "the summary was printed by more than one rank"

    cfg = compose_config(
        "eval",
        [
            *DATA,
            f"checkpoint={record.best_ckpt}",
            "split=val",
            "data.val_batch_size=16",
            f"paths.output_dir={tmp_path / 'eval'}",
            "threads=1",
        ],
    )
    scores = evaluate(cfg)
    assert scores["miou"] == pytest.approx(logged, abs=1e-5), (
        "DDP val mIoU is not the whole val split's"
    )
