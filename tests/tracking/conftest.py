"""One real 2-job multirun (W&B offline), shared by the W&B, sweep-summary and leaderboard tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rtseg.utils.paths import REPO_ROOT

BIN = Path(sys.executable).parent
MODELS = "baseline,unet" if (REPO_ROOT / "conf" / "model" / "unet.yaml").is_file() else "baseline"
# tiny runs through the console script (a subprocess, so no in-process fixtures)
TINY_CLI = [
    "data.lengths.train=16",
    "data.lengths.val=8",
    "data.lengths.test=8",
    "data.input_size=[64,80]",
    "data.batch_size=8",
    "callbacks.progress_bar=null",
    "callbacks.model_cost.latency_min_runs=2",
    "callbacks.model_cost.latency_min_seconds=0",
    "trainer.enable_model_summary=false",
    "threads=1",
]


def run_cli(args: list[str], timeout: int = 300, **env) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        **env,
    }
    proc = subprocess.run(
        args, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="session")
def wandb_sweep(tmp_path_factory) -> Path:
    """The acceptance multirun, made tiny: one job per model, logger=wandb, offline."""
    sweep = tmp_path_factory.mktemp("tracking") / "sweep"
    args = [
        str(BIN / "rtseg-train"),
        "-m",
        "data=synthetic",
        f"model={MODELS}",
        "trainer.max_epochs=1",
        "logger=wandb",
        f"hydra.sweep.dir={sweep}",
        *TINY_CLI,
    ]
    if MODELS == "baseline":  # no second architecture yet: two widths of the baseline
        args.append("model.width=8,16")
    run_cli(args, RTSEG_LOG_DIR=str(sweep.parent / "logs"))
    return sweep
