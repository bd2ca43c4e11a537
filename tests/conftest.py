"""Shared fixtures: Hydra composition with tiny synthetic data so that real training runs stay fast."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from rtseg.utils import CONF_DIR  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# Small, quick synthetic runs: 64x80 scenes, a few dozen samples, 1 thread (train and eval).
TINY = [
    "data=synthetic",
    "data.input_size=[64,80]",
    "data.lengths.train=32",
    "data.lengths.val=16",
    "data.lengths.test=16",
    "data.batch_size=8",
    "data.val_batch_size=16",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    "threads=1",
]
# ... plus, for rtseg-train: CSV logging only, no progress bar, a quick latency figure.
FAST_TRAIN = [
    "logger=csv",
    "~callbacks.progress_bar",
    "callbacks.model_cost.latency_min_runs=2",
    "callbacks.model_cost.latency_min_seconds=0",
]


def camvid_root() -> Path | None:
    """CamVid for tests: $CAMVID_DIR, else the shared copy beside the repo; None when absent."""
    env = os.environ.get("CAMVID_DIR")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "camvid"]:
        if (candidate / "train").is_dir():
            return candidate
    return None


@pytest.fixture
def camvid_dir() -> Path:
    """The CamVid root for tests that need it; skips with a reason when there is none."""
    root = camvid_root()
    if root is None:
        pytest.skip("CamVid not found (set CAMVID_DIR or put it at ../shared/data/camvid)")
    return root


@pytest.fixture
def compose_cfg(tmp_path):
    """compose_cfg(config_name, overrides) -> DictConfig with the run folder under tmp_path."""

    def _compose(
        config_name: str = "train", overrides: list[str] | None = None, run_dir: Path | None = None
    ):
        GlobalHydra.instance().clear()
        out = run_dir or tmp_path / "run"
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name=config_name,
                overrides=[
                    f"paths.output_dir={out}",
                    f"paths.log_dir={tmp_path / 'logs'}",
                    *(overrides or []),
                ],
            )
        GlobalHydra.instance().clear()
        return cfg

    return _compose
