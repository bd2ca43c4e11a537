"""Shared fixtures: Hydra composition with tiny synthetic data so that real training runs stay fast,
and the two test checkpoints (one trained, one hand-written)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from omegaconf import OmegaConf  # noqa: E402

from rtseg.data.synthetic import CLASS_NAMES, PALETTE  # noqa: E402
from rtseg.models.baseline import ThreeConvNet  # noqa: E402
from rtseg.training.module import SegmentationModule  # noqa: E402
from rtseg.utils.config import compose_config  # noqa: E402
from rtseg.utils.images import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

from .support import camvid_root, video_threads  # noqa: E402

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


@pytest.fixture(autouse=True)
def no_video_handle_left_open():
    """Fail the test that leaves a video capture/writer (or its FFmpeg threads) alive behind it.

    A leaked ``cv2.VideoCapture`` keeps FFmpeg's threads for the life of the process; one that is
    released from another thread than its reader can corrupt the heap and crash pytest hundreds of
    tests later (issue 24). This names the test that made the leak instead. Threads get a short
    grace period: a capture owner releases its handle when its last read returns.
    """
    import time

    before = set(video_threads())
    yield
    if not Path("/proc/self/task").is_dir():  # not Linux: nothing to read the names from
        return
    deadline = time.monotonic() + 3.0
    while (
        left := sorted(n for i, n in video_threads().items() if i not in before)
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        pytest.fail(
            f"this test left video handles open (threads still alive: {', '.join(left)}): "
            "release every VideoCapture/VideoWriter it opens, close every source",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def signal_stack_unchanged():
    """Fail the test that leaves the main thread's alternate signal stack changed: native code
    (OpenVINO's CPU plugin) can leave it on freed memory, where the next Python signal handler
    corrupts the heap (issue 24; ``rtseg.utils.signal_stack``)."""
    from rtseg.utils.signal_stack import signal_stack

    before = signal_stack()
    yield
    after = signal_stack()
    if after != before:
        pytest.fail(
            f"this test left the thread's alternate signal stack changed ({before} -> {after}): "
            "wrap the native call that changed it in rtseg.utils.signal_stack.keep_signal_stack",
            pytrace=False,
        )


@pytest.fixture
def camvid_dir() -> Path:
    """The CamVid root for tests that need it; skips with a reason when there is none."""
    root = camvid_root()
    if root is None:
        pytest.skip("CamVid not found (set CAMVID_DIR or put it at ../shared/data/camvid)")
    return root


@pytest.fixture
def tiny_train_overrides() -> list[str]:
    """TINY + FAST_TRAIN without the logger choice, for tests in sub-packages (which cannot import
    this module) that pick their own logger."""
    return [*TINY, *(o for o in FAST_TRAIN if not o.startswith("logger="))]


@pytest.fixture
def compose_cfg(tmp_path):
    """compose_cfg(config_name, overrides) -> DictConfig with the run folder under tmp_path."""

    def _compose(
        config_name: str = "train", overrides: list[str] | None = None, run_dir: Path | None = None
    ):
        out = run_dir or tmp_path / "run"
        paths = [f"paths.output_dir={out}", f"paths.log_dir={tmp_path / 'logs'}"]
        return compose_config(config_name, [*paths, *(overrides or [])])

    return _compose


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    return ThreeConvNet(num_classes=5, width=8).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """rtseg-train for one epoch on 32x32 synthetic scenes: a real checkpoint with meta and val mIoU."""
    from rtseg.training.train import train

    out = tmp_path_factory.mktemp("train")
    cfg = compose_config(
        "train",
        [
            f"paths.output_dir={out}",
            f"paths.log_dir={out}",
            "data.input_size=[32,32]",
            "data.lengths={train:8,val:4,test:4}",
            "data.batch_size=4",
            "data.val_batch_size=4",
            "model.width=8",
            "trainer.max_epochs=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_model_summary=false",
            "logger=none",
            "callbacks.prediction_images=null",
            "callbacks.progress_bar=null",
            "callbacks.lr_monitor=null",
            "test=false",
            "threads=1",
        ],
    )
    train(cfg)
    best = sorted((out / "checkpoints").glob("best*.ckpt"))
    assert best, f"training wrote no best checkpoint in {out}"
    return best[0]


def write_checkpoint(path, width: int = 8, yaml_width: int | None = None, val_miou: float = 0.5):
    """A checkpoint laid out as rtseg-train writes it (Lightning keys, meta in hyper_parameters).

    Hand-written where a test needs what training cannot give quickly: a given input size
    (32x48), a chosen val mIoU, or weights that do not fit the recorded model (``yaml_width``).
    """
    torch.manual_seed(0)
    model_cfg = {
        "_target_": "rtseg.models.baseline.ThreeConvNet",
        "num_classes": len(CLASS_NAMES),
        "width": yaml_width or width,
    }
    meta = {
        "dataset": "synthetic",
        "num_classes": len(CLASS_NAMES),
        "class_names": list(CLASS_NAMES),
        "palette": [list(c) for c in PALETTE],
        "ignore_index": 255,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "input_size": [32, 48],
        "model_yaml": OmegaConf.to_yaml(OmegaConf.create(model_cfg)),
    }
    module = SegmentationModule(
        ThreeConvNet(len(CLASS_NAMES), width=width),
        num_classes=len(CLASS_NAMES),
        class_names=list(CLASS_NAMES),
        meta=meta,
    )
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/miou'}": {"best_model_score": torch.tensor(val_miou)}
        },
    }
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A hand-written 7-class baseline checkpoint at 32x48 (see ``write_checkpoint``)."""
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture
def checkpoint_writer():
    """``write_checkpoint`` for tests that need their own hand-written checkpoint."""
    return write_checkpoint


def pytest_collection_modifyitems(items):
    """A test that asks for ``camvid_dir`` needs CamVid: marked ``camvid`` like the tests that say
    so themselves, so that ``-m camvid`` selects every one of them (.ci/run's step beside
    ../shared)."""
    for item in items:
        if "camvid_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.camvid)
