"""Sweep-level summary: a Hydra callback that writes ``summary.csv`` + ``summary.md`` when a multirun ends.

Registered as ``sweep_summary`` in ``conf/hydra/default.yaml``: training jobs are summarised from
their run records (the leaderboard's columns). ``conf/benchmark.yaml`` puts the benchmark's own
summary (machine header, speed-ups) in that slot, so a sweep folder gets exactly one summary.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rtseg.tracking.compare import (
    LEADERBOARD_COLUMNS,
    leaderboard,
    leaderboard_markdown,
    plot_pareto,
)
from rtseg.tracking.runs import find_runs
from rtseg.utils.paths import write_atomic

log = logging.getLogger("rtseg.sweep")


def summarize_sweep(sweep_dir: str | Path) -> pd.DataFrame | None:
    """Write ``summary.csv``/``summary.md``/``pareto.png`` of the training runs in ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    records = find_runs(sweep_dir) if sweep_dir.is_dir() else []
    if not records:
        return None
    df = leaderboard(records, sweep_dir)
    df["overrides"] = varying_overrides(df["overrides"])
    md = f"# Sweep {sweep_dir.name}: {len(df)} training jobs\n\n" + leaderboard_markdown(
        df, [*LEADERBOARD_COLUMNS, "overrides"]
    )
    plot_pareto(df, sweep_dir / "pareto.png", title=f"val mIoU vs fps: {sweep_dir.name}")
    write_atomic(sweep_dir / "summary.csv", df.to_csv(index=False))
    write_atomic(sweep_dir / "summary.md", md)
    return df


def varying_overrides(overrides: pd.Series) -> pd.Series:
    """Each job's overrides minus those shared by every job: what the sweep actually varied."""
    split = [str(o).split() for o in overrides]
    common = set.intersection(*map(set, split)) if len(split) > 1 else set()
    return pd.Series(
        [" ".join(o for o in job if o not in common) for job in split], index=overrides.index
    )


class SweepSummary(Callback):
    """Hydra callback: summarise the sweep folder once all jobs have returned."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            df = summarize_sweep(sweep_dir)
        except Exception as e:  # noqa: BLE001 - a summary must never turn a finished sweep into a failure
            log.warning("sweep summary for %s failed: %s", sweep_dir, e)
            return
        if df is not None:
            log.info("sweep summary: %s (%d rows)", sweep_dir / "summary.md", len(df))
