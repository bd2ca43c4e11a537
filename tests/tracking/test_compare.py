"""rtseg-compare and the sweep summary: one row per job, crashed/running runs shown, Pareto PNG written."""

from __future__ import annotations

import csv
import os
import subprocess
import time

import pandas as pd

from rtseg.tracking.compare import leaderboard, main, pareto_front
from rtseg.tracking.runs import RunRecord, find_runs
from rtseg.tracking.sweep import summarize_sweep

from .conftest import BIN, run_cli


def test_sweep_summary_written_when_multirun_ends(wandb_sweep):
    rows = list(csv.DictReader((wandb_sweep / "summary.csv").open()))
    assert sorted(r["run"] for r in rows) == ["0", "1"]
    assert all(r["state"] == "finished" and float(r["val_miou"]) >= 0 for r in rows)
    md = (wandb_sweep / "summary.md").read_text()
    assert md.count("| finished |") == 2
    # the summary shows what the sweep varied, not the overrides every job shared
    assert "model=" in md and "trainer.max_epochs=1" not in md
    assert (wandb_sweep / "pareto.png").stat().st_size > 1000


def test_rtseg_compare_prints_one_row_per_job(wandb_sweep, tmp_path):
    out = run_cli(
        [
            str(BIN / "rtseg-compare"),
            str(wandb_sweep),
            "--csv",
            str(tmp_path / "lb.csv"),
            "--png",
            str(tmp_path / "lb.png"),
        ],
        COLUMNS="200",
    )
    lines = [ln for ln in out.stdout.splitlines() if "synthetic" in ln]
    assert len(lines) == 2, out.stdout
    assert (tmp_path / "lb.png").read_bytes()[:4] == b"\x89PNG"
    df = pd.read_csv(tmp_path / "lb.csv")
    assert len(df) == 2 and df["val_miou"].is_monotonic_decreasing
    assert set(df.columns) >= {
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
    }


def _record(root, name, **kw) -> RunRecord:
    rec = RunRecord(
        run_dir=str(root / name), dataset="synthetic", model=name, input_size=[64, 80], **kw
    )
    rec.save()
    return rec


def test_crashed_and_running_runs_are_listed(tmp_path, capsys):
    _record(
        tmp_path,
        "fast",
        status="finished",
        val_miou_best=0.3,
        fps=100.0,
        latency_backend="eager-fp32",
    )
    _record(
        tmp_path,
        "accurate",
        status="finished",
        val_miou_best=0.6,
        fps=10.0,
        latency_backend="eager-fp32",
    )
    _record(
        tmp_path,
        "dominated",
        status="finished",
        val_miou_best=0.2,
        fps=50.0,
        latency_backend="eager-fp32",
    )
    dead = subprocess.Popen(["true"])
    dead.wait()
    _record(tmp_path, "killed", pid=dead.pid)  # status running, process gone
    _record(tmp_path, "live", pid=os.getpid(), started=time.time() + 1)
    assert main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    df = pd.read_csv(tmp_path / "leaderboard.csv")
    # best val mIoU first; runs without a score at the end
    assert list(df["model"])[:3] == ["accurate", "fast", "dominated"] and set(df["model"][3:]) == {
        "live",
        "killed",
    }
    states = dict(zip(df["model"], df["state"], strict=True))
    assert states["killed"] == "crashed" and states["live"] == "running"
    assert "crashed" in printed and "running" in printed
    assert (tmp_path / "leaderboard.png").is_file()
    front = pareto_front(leaderboard(find_runs(tmp_path), tmp_path))
    assert list(front["model"]) == ["fast", "accurate"]


def test_compare_reports_a_missing_or_empty_folder(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no such log folder" in err and "no run records" in err


def test_sweep_summary_skips_a_folder_without_training_runs(tmp_path):
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "results.csv").write_text("backend,median_ms\neager,5.0\n")
    assert summarize_sweep(tmp_path) is None and not (tmp_path / "summary.md").exists()
    assert summarize_sweep(tmp_path / "empty") is None
