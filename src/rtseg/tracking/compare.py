"""rtseg-compare: the local leaderboard of every run under a log folder (no W&B needed).

Reads runs only through ``rtseg.tracking.runs``; prints a table sorted by val mIoU, writes it as
CSV, and plots the mIoU-vs-fps Pareto front (the accuracy/speed picture of a sweep).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

import pandas as pd

from rtseg.tracking.runs import RunRecord, find_runs
from rtseg.utils.markdown import markdown_table
from rtseg.utils.paths import atomic_path, storage_error_line, write_atomic

LEADERBOARD_COLUMNS = [
    "run",
    "data",
    "model",
    "encoder",
    "input_size",
    "val_miou",
    "fps",
    "backend",
    "gflops",
    "params_m",
    "date",
    "state",
]


def run_name(record: RunRecord, root: Path) -> str:
    """The run folder relative to ``root`` (``<sweep>/<job>`` or ``train/runs/<stamp>``)."""
    try:
        name = str(Path(record.run_dir).resolve().relative_to(root.resolve()))
        return name if name != "." else Path(record.run_dir).name
    except ValueError:
        return Path(record.run_dir).name


def leaderboard(records: list[RunRecord], root: str | Path) -> pd.DataFrame:
    """One row per run, best val mIoU first; runs without a score (crashed, running) at the end."""
    root = Path(root)
    rows = []
    for r in records:
        rows.append(
            {
                "run": run_name(r, root),
                "data": r.dataset,
                "model": r.model,
                "encoder": r.encoder,
                "input_size": "x".join(map(str, r.input_size)) if r.input_size else None,
                "val_miou": r.val_miou_best,
                "fps": r.fps,
                "backend": r.latency_backend,
                "gflops": r.gflops,
                "params_m": r.params / 1e6 if r.params else None,
                "date": dt.datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M"),
                "state": r.state,
                "experiment": r.experiment,
                "test_miou": r.test_miou,
                "latency_ms": r.latency_ms,
                "epochs": r.epochs,
                "run_dir": r.run_dir,
                "overrides": " ".join(r.overrides or []),
            }
        )
    df = pd.DataFrame(
        rows,
        columns=[
            *LEADERBOARD_COLUMNS,
            "experiment",
            "test_miou",
            "latency_ms",
            "epochs",
            "run_dir",
            "overrides",
        ],
    )
    return df.sort_values(["val_miou", "fps"], ascending=False, na_position="last").reset_index(
        drop=True
    )


def pareto_front(df: pd.DataFrame) -> pd.DataFrame:
    """Runs that no other run beats on both val mIoU and fps, fastest first."""
    pts = df.dropna(subset=["val_miou", "fps"]).sort_values(["fps", "val_miou"], ascending=False)
    front, best = [], -1.0
    for idx, row in pts.iterrows():
        if row["val_miou"] > best:
            front.append(idx)
            best = row["val_miou"]
    return pts.loc[front]


def plot_pareto(
    df: pd.DataFrame, path: str | Path, title: str = "val mIoU vs speed"
) -> Path | None:
    """Scatter of every scored run, the Pareto front as a line, each point labelled."""
    # a bare Figure (no pyplot): no GUI backend needed, and a notebook's inline backend is left alone
    from matplotlib.figure import Figure

    pts = df.dropna(subset=["val_miou", "fps"])
    if pts.empty:
        return None
    front = pareto_front(df)
    fig = Figure(figsize=(8, 5.5), dpi=120)
    ax = fig.subplots()
    ax.scatter(pts["fps"], 100 * pts["val_miou"], s=30, color="tab:blue", alpha=0.7, label="runs")
    ax.plot(
        front["fps"], 100 * front["val_miou"], "-o", color="tab:red", ms=6, label="Pareto front"
    )
    for _, row in pts.iterrows():
        label = f"{Path(row['run']).name}: {row['model'] or '?'}"
        if row["encoder"]:
            label += f"/{row['encoder']}"
        label += f" {row['input_size']}" if row["input_size"] else ""
        ax.annotate(
            label,
            (row["fps"], 100 * row["val_miou"]),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)  # room for the labels of the outermost points
    ax.set_xlabel(f"fps ({', '.join(sorted(set(pts['backend'].dropna()))) or 'measured'}, batch 1)")
    ax.set_ylabel("best val mIoU (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    return path


def leaderboard_markdown(df: pd.DataFrame, columns: list[str] = LEADERBOARD_COLUMNS) -> str:
    """Leaderboard columns as a GitHub markdown table (experiments/ READMEs, sweep summaries)."""
    return markdown_table(columns, format_rows(df, columns))


def format_rows(df: pd.DataFrame, columns: list[str] = LEADERBOARD_COLUMNS) -> list[list[str]]:
    def fmt(col, v):
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return "-"
        if col == "val_miou":
            return f"{100 * v:.2f}"
        if col in ("fps", "gflops"):
            return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
        if col == "params_m":
            return f"{v:.3f}"
        if col == "overrides":
            return f"`{v}`" if v else "-"
        return str(v)

    return [[fmt(c, row[c]) for c in columns] for _, row in df.iterrows()]


def print_leaderboard(df: pd.DataFrame, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in LEADERBOARD_COLUMNS:
        label = {
            "val_miou": "val mIoU",
            "params_m": "params (M)",
            "gflops": "GFLOPs",
            "input_size": "input",
        }.get(col, col)
        table.add_column(
            label, justify="right" if col in ("val_miou", "fps", "gflops", "params_m") else "left"
        )
    styles = {
        "crashed": "red",
        "failed": "red",
        "running": "yellow",
        "interrupted": "yellow",
        "pruned": "dim",
    }
    for row, state in zip(format_rows(df), df["state"], strict=True):
        table.add_row(*row, style=styles.get(state))
    Console(width=max(160, Console().width)).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtseg-compare", description=__doc__.splitlines()[0])
    parser.add_argument(
        "dir",
        nargs="?",
        default=os.environ.get("RTSEG_LOG_DIR", "logs"),
        help="folder searched for run.json records (default: $RTSEG_LOG_DIR or logs)",
    )
    parser.add_argument(
        "--csv", default=None, help="where to write the table (default: DIR/leaderboard.csv)"
    )
    parser.add_argument(
        "--png", default=None, help="where to write the Pareto plot (default: DIR/leaderboard.png)"
    )
    parser.add_argument("--dataset", default=None, help="only runs on this dataset")
    parser.add_argument("--experiment", default=None, help="only runs of this experiment preset")
    args = parser.parse_args(argv)

    root = Path(args.dir)
    if not root.is_dir():
        print(
            f"error: {root}: no such log folder (pass the folder holding your runs, or set RTSEG_LOG_DIR)",
            file=sys.stderr,
        )
        return 2
    records = [
        r
        for r in find_runs(root)
        if (args.dataset is None or r.dataset == args.dataset)
        and (args.experiment is None or r.experiment == args.experiment)
    ]
    if not records:
        print(f"error: no run records (run.json) under {root}", file=sys.stderr)
        return 2
    df = leaderboard(records, root)
    print_leaderboard(df, f"{len(df)} runs under {root}")
    csv_path = Path(args.csv or root / "leaderboard.csv")
    try:
        write_atomic(csv_path, df.to_csv(index=False))
        png = plot_pareto(
            df,
            args.png or root / "leaderboard.png",
            title=f"val mIoU vs fps: {root.resolve().name}",
        )
    except OSError as e:  # a read-only or full log folder: the table above is all there is
        line = storage_error_line(e)
        if line is None:
            raise
        print(
            f"error: {line} (the table above is complete; --csv/--png write it elsewhere)",
            file=sys.stderr,
        )
        return 2
    print(f"table: {csv_path}")
    print(
        f"Pareto plot: {png}"
        if png
        else "Pareto plot: none (no run has both a val mIoU and an fps yet)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
