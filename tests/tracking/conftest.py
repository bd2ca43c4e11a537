"""One real 2-job multirun (W&B offline), shared by the W&B, sweep-summary and leaderboard tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtseg.utils.paths import REPO_ROOT

from ..support import BIN, run_cli  # noqa: F401 - re-exported to the tracking tests

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
