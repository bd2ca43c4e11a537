"""Every conf/experiment/*.yaml composes and survives a fast-dev-run (one train/val/test batch);
every experiments/*/*.py script answers --help and changes nothing, and a table script with no runs
refuses instead of overwriting the recorded results."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rtseg.tracking.runs import RunRecord
from rtseg.training.train import train
from rtseg.utils.paths import CONF_DIR

from .support import REPO, camvid_root

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# CamVid presets read full-size images (~30-40 s each here): in the slow suite (`pytest -m slow`)
PARAMS = [
    pytest.param(n, marks=[pytest.mark.slow, pytest.mark.camvid]) if n.startswith("camvid") else n
    for n in EXPERIMENTS
]
# what keeps a preset's run small whatever its data: tiny batches, no workers, quick latency
SMALL = [
    "trainer.fast_dev_run=true",
    "data.batch_size=2",
    "data.val_batch_size=2",
    "data.num_workers=0",
    "logger=csv",
    "callbacks.progress_bar=null",
    "callbacks.model_cost.latency_min_runs=1",
    "callbacks.model_cost.latency_min_seconds=0",
    "trainer.enable_model_summary=false",
    "threads=1",
]

TINY_SYNTHETIC = [
    "data.input_size=[64,80]",
    "data.lengths.train=8",
    "data.lengths.val=4",
    "data.lengths.test=4",
]


def test_there_are_presets():
    assert {"baseline_synthetic", "unet_synthetic", "baseline_binary"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", PARAMS)
def test_experiment_fast_dev_run(name, compose_cfg):
    cfg = compose_cfg("train", [f"experiment={name}"])
    assert cfg.experiment_name == name, (
        f"conf/experiment/{name}.yaml must set experiment_name: {name}"
    )
    overrides = [f"experiment={name}", *SMALL]
    if cfg.data.name == "synthetic":
        overrides += TINY_SYNTHETIC
    elif cfg.data.name == "camvid":
        root = camvid_root()
        if root is None:
            pytest.skip("CamVid not found (set CAMVID_DIR or put it in ../shared/data/camvid)")
        overrides += [f"data.root={root}", "data.verify=false"]
    else:
        pytest.skip(f"no test data for data={cfg.data.name}")
    if cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        # a GPU recipe still has to compose and run: check it on the CPU
        overrides += ["trainer.accelerator=cpu", "trainer.precision=32-true", "trainer.devices=1"]
    cfg = compose_cfg("train", overrides)
    results = train(cfg)
    assert "val/miou" in results and "train/loss" in results, (
        f"{name}: no train/val metrics: {sorted(results)}"
    )
    record = RunRecord.load(Path(cfg.paths.output_dir) / "run.json")
    assert record.status == "finished" and record.experiment == name
    assert record.params and record.gflops, "the model cost was not recorded"


EXPERIMENTS_DIR = REPO / "experiments"
SCRIPTS = sorted(EXPERIMENTS_DIR.glob("*/*.py"))
# the scripts that collect runs into the recorded tables: no runs, nothing written
TABLES = [
    EXPERIMENTS_DIR / "camvid_generalisation" / "table.py",
    EXPERIMENTS_DIR / "camvid_pareto" / "table.py",
    EXPERIMENTS_DIR / "temporal_filter" / "table.py",
]


def _files(root: Path) -> dict[Path, str]:
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _script(path: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "RTSEG_LOG_DIR": str(tmp_path / "logs"), "WANDB_MODE": "offline"}  # fmt: skip
    return subprocess.run(
        [sys.executable, str(path), *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip


def test_there_are_scripts():
    assert len(SCRIPTS) >= 10 and all(t in SCRIPTS for t in TABLES)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_script_answers_help_and_changes_nothing(script, tmp_path):
    # a script without an argparse interface would take --help as its input: never run it
    assert "parse_args" in script.read_text(), f"{script}: no argparse interface"
    before = _files(EXPERIMENTS_DIR)
    proc = _script(script, "--help", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage: "), proc.stdout[:500]
    purpose = script.read_text().split('"""')[1].strip().splitlines()[0]
    assert " ".join(purpose.split()) in " ".join(proc.stdout.split()), "the docstring describes it"
    assert _files(EXPERIMENTS_DIR) == before, f"{script} --help changed files under experiments/"
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("script", TABLES, ids=lambda p: p.parent.name)
def test_a_table_script_without_runs_refuses_and_writes_nothing(script, tmp_path):
    before = _files(EXPERIMENTS_DIR)
    out = tmp_path / "out"
    for args in ([str(tmp_path / "no_runs")], [str(tmp_path / "no_runs"), "--out", str(out)]):
        proc = _script(script, *args, tmp_path=tmp_path)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert _files(EXPERIMENTS_DIR) == before
    assert not out.exists() or not any(out.iterdir())


def test_a_table_script_writes_where_told(tmp_path):
    """camvid_generalisation/table.py on one real-shaped run, --out a folder: its three files
    there, nothing beside the script."""
    run = tmp_path / "runs" / "base"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "finished", "epochs": 2}))
    (run / "metrics.csv").write_text("epoch,val/miou\n0,0.40\n1,0.45\n")
    before = _files(EXPERIMENTS_DIR)
    out = tmp_path / "out"
    script = EXPERIMENTS_DIR / "camvid_generalisation" / "table.py"
    proc = _script(script, str(tmp_path / "runs"), "--out", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["ablation.csv", "ablation.md", "curves.png"]
    assert "45.00" in (out / "ablation.md").read_text()
    assert _files(EXPERIMENTS_DIR) == before
