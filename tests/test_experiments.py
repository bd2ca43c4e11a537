"""Every conf/experiment/*.yaml composes and survives a fast-dev-run (one train/val/test batch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rtseg.tracking.runs import RunRecord
from rtseg.training.train import train
from rtseg.utils.paths import CONF_DIR

from .support import camvid_root

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
