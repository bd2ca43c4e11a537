"""Run records: what a finished (or crashed) run left, in ``<run dir>/run.json``.

Every reader of past runs (``checkpoint=best``, the leaderboard, W&B summaries, notebooks) goes
through this module instead of globbing run folders on its own.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rtseg.utils.paths import write_atomic

log = logging.getLogger("rtseg.tracking")

RECORD_NAME = "run.json"


@dataclass
class RunRecord:
    run_dir: str
    task: str = "train"
    status: str = "running"  # running | finished | failed | interrupted (state: + crashed, pruned)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    pid: int = field(default_factory=os.getpid)
    dataset: str | None = None
    model: str | None = None
    encoder: str | None = None
    encoder_weights: str | None = None
    input_size: list[int] | None = None
    num_classes: int | None = None
    class_names: list[str] | None = None
    experiment: str | None = None
    tags: list[str] = field(default_factory=list)
    sweep_dir: str | None = None
    overrides: list[str] = field(default_factory=list)
    seed: int | None = None
    git_commit: str | None = None
    params: int | None = None
    gflops: float | None = None
    latency_ms: float | None = None
    latency_p90_ms: float | None = None
    fps: float | None = None
    latency_backend: str | None = None
    epochs: int | None = None
    # the last training epoch's throughput and the share of its step time spent waiting for data
    train_images_per_s: float | None = None
    data_wait_share: float | None = None
    wall_time_s: float | None = None
    val_miou_best: float | None = None
    val_iou: dict[str, float] | None = None
    test_miou: float | None = None
    # the split the test stage read: test, a declared fallback (val), or none (no test split: no stage)
    test_split: str | None = None
    # how train and val were drawn (CamVid: standard | sequence | trainval) and what each split
    # held: images and frames per video sequence, so a reader sees whether val shares a sequence
    val_protocol: str | None = None
    splits: dict | None = None
    best_ckpt: str | None = None
    last_ckpt: str | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / RECORD_NAME

    def save(self) -> None:
        # atomic: readers never see half a record
        write_atomic(self.path, json.dumps(asdict(self), indent=2, default=str))

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        rec = cls(**{k: v for k, v in data.items() if k in known})
        rec.run_dir = str(Path(path).parent)
        return rec

    @property
    def alive(self) -> bool:
        """A 'running' record whose process is gone was killed without a chance to say so."""
        if self.status != "running":
            return False
        try:
            os.kill(self.pid, 0)
            return True
        except (ProcessLookupError, PermissionError, OSError):
            return False

    @property
    def state(self) -> str:
        if self.status == "running" and not self.alive:
            return "crashed"
        if self.status == "finished" and self.extra.get("pruned_at_epoch") is not None:
            return "pruned"  # an Optuna trial stopped early by the study's pruner
        return self.status

    def load_config(self):
        """The run's composed config (``config.yaml``, unresolved), or None when it is gone."""
        from omegaconf import OmegaConf

        path = Path(self.run_dir) / "config.yaml"
        return OmegaConf.load(path) if path.is_file() else None

    def metrics(self):
        """``metrics.csv`` as a pandas DataFrame (one row per logged step), or None when absent."""
        import pandas as pd

        path = Path(self.run_dir) / "metrics.csv"
        return pd.read_csv(path) if path.is_file() else None


def find_runs(
    root: str | Path, task: str | None = "train", unreadable: list[Path] | None = None
) -> list[RunRecord]:
    """Every run record under ``root``, oldest first. An unreadable record (corrupt JSON, a field
    of the wrong type) is skipped with a warning naming it, and appended to ``unreadable`` when
    given, so "no run found" can say that some were there but could not be read."""
    root = Path(root)
    if not root.exists():
        return []
    records = []
    for path in root.rglob(RECORD_NAME):
        try:
            rec = RunRecord.load(path)
        except (OSError, ValueError, TypeError) as e:
            log.warning("run record %s is unreadable (%s): skipped", path, type(e).__name__)
            if unreadable is not None:
                unreadable.append(path)
            continue
        if task is None or rec.task == task:
            records.append(rec)
    return sorted(records, key=lambda r: r.started)


def best_run(
    records: Iterable[RunRecord],
    dataset: str | None = None,
    experiment: str | None = None,
    tag: str | None = None,
    model: str | None = None,
) -> RunRecord | None:
    """The run with the highest recorded val mIoU that still has its best checkpoint on disk.

    mIoU is only comparable within one dataset and class set: when the matching runs span several,
    ``MixedDatasets`` is raised with each one's best, and the caller asks the user to pick.
    """
    candidates = [
        r
        for r in records
        if r.val_miou_best is not None
        and r.best_ckpt
        and Path(r.best_ckpt).is_file()
        and (dataset is None or r.dataset == dataset)
        and (experiment is None or r.experiment == experiment)
        and (tag is None or tag in (r.tags or []))
        and (model is None or r.model == model)
    ]
    groups: dict[tuple, list[RunRecord]] = {}
    for r in candidates:
        groups.setdefault((r.dataset, tuple(r.class_names or ()) or r.num_classes), []).append(r)
    if len(groups) > 1:
        raise MixedDatasets({k: max(v, key=lambda r: r.val_miou_best) for k, v in groups.items()})
    return max(candidates, key=lambda r: r.val_miou_best, default=None)


class MixedDatasets(Exception):
    """Matching runs on more than one dataset / class set: their mIoUs are not comparable."""

    def __init__(self, best_per_group: dict):
        self.best = best_per_group
        super().__init__(f"runs on {len(best_per_group)} datasets or class sets")
