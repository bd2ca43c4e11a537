"""Sweep-level summary: a Hydra callback that writes ``summary.csv`` + ``summary.md`` when a multirun ends.

Registered in ``conf/hydra/default.yaml``, so every ``-m`` run of every entrypoint gets one.
Training jobs are summarised from their run records (the leaderboard's columns); jobs of other
entrypoints (e.g. ``rtseg-bench -m``, which writes ``results.csv``) have their CSVs stacked with a
``job`` column. Jobs with neither are skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rtseg.tracking.compare import LEADERBOARD_COLUMNS, leaderboard, markdown_table, plot_pareto
from rtseg.tracking.runs import find_runs

log = logging.getLogger("rtseg.sweep")


def summarize_sweep(
    sweep_dir: str | Path, results_name: str = "results.csv"
) -> pd.DataFrame | None:
    """Write ``summary.csv``/``summary.md`` (and ``pareto.png`` for training sweeps) into ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return None
    records = find_runs(sweep_dir)
    if records:
        df = leaderboard(records, sweep_dir)
        df["overrides"] = varying_overrides(df["overrides"])
        md = f"# Sweep {sweep_dir.name}: {len(df)} training jobs\n\n" + markdown_table(
            df, [*LEADERBOARD_COLUMNS, "overrides"]
        )
        plot_pareto(df, sweep_dir / "pareto.png", title=f"val mIoU vs fps: {sweep_dir.name}")
    else:
        frames = []
        for csv in sorted(
            sweep_dir.glob(f"*/{results_name}"), key=lambda p: _job_key(p.parent.name)
        ):
            try:
                frames.append(pd.read_csv(csv).assign(job=csv.parent.name))
            except (OSError, ValueError, pd.errors.EmptyDataError):
                continue
        if not frames:
            return None
        df = pd.concat(frames, ignore_index=True)
        df = df[["job", *[c for c in df.columns if c != "job"]]]
        md = f"# Sweep {sweep_dir.name}: {df['job'].nunique()} jobs\n\n" + _markdown(df)
    df.to_csv(sweep_dir / "summary.csv", index=False)
    (sweep_dir / "summary.md").write_text(md)
    return df


def varying_overrides(overrides: pd.Series) -> pd.Series:
    """Each job's overrides minus those shared by every job: what the sweep actually varied."""
    split = [str(o).split() for o in overrides]
    common = set.intersection(*map(set, split)) if len(split) > 1 else set()
    return pd.Series(
        [" ".join(o for o in job if o not in common) for job in split], index=overrides.index
    )


def _markdown(df: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "-" if pd.isna(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _job_key(name: str):
    return (0, int(name)) if name.isdigit() else (1, name)


class SweepSummary(Callback):
    """Hydra callback: summarise the sweep folder once all jobs have returned."""

    def __init__(self, results_name: str = "results.csv") -> None:
        self.results_name = results_name

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            df = summarize_sweep(sweep_dir, self.results_name)
        except Exception as e:  # noqa: BLE001 - a summary must never turn a finished sweep into a failure
            log.warning("sweep summary for %s failed: %s", sweep_dir, e)
            return
        if df is not None:
            log.info("sweep summary: %s (%d rows)", sweep_dir / "summary.md", len(df))
