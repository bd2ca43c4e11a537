"""The hint ``checkpoint.dataset=...`` that checkpoint=best gives across datasets works in every
entrypoint that takes checkpoint= (eval, bench, export, realtime), and checkpoint=PATH still does."""

from __future__ import annotations

import shutil

import pytest

from rtseg.bench.cli import load_subject
from rtseg.checkpoints.spec import choose_checkpoint
from rtseg.errors import CheckpointError
from rtseg.infer.export import run_export
from rtseg.tracking.runs import RunRecord
from rtseg.training.eval import evaluate
from rtseg.utils.config import compose_config


def _run(log_dir, name, dataset, ckpt, miou):
    """A finished run record on ``dataset`` whose best checkpoint is a copy of ``ckpt``."""
    run = log_dir / "train" / "runs" / name
    best = run / "checkpoints" / "best.ckpt"
    best.parent.mkdir(parents=True)
    shutil.copy(ckpt, best)
    RunRecord(
        run_dir=str(run), status="finished", dataset=dataset, num_classes=7 if dataset == "synthetic" else 11,
        val_miou_best=miou, best_ckpt=str(best),
    ).save()  # fmt: skip
    return best


@pytest.fixture
def two_datasets(tmp_path, tiny_checkpoint, tiny_ckpt):
    logs = tmp_path / "logs"
    synthetic = _run(logs, "syn", "synthetic", tiny_checkpoint, 0.3)
    _run(logs, "cam", "camvid", tiny_ckpt, 0.9)
    return logs, synthetic


def _cfg(name, logs, tmp_path, *overrides):
    return compose_config(
        name, [f"paths.log_dir={logs}", f"paths.output_dir={tmp_path / name}", *overrides]
    )


def test_the_dataset_hint_is_accepted_everywhere(two_datasets, tmp_path):
    logs, synthetic = two_datasets
    with pytest.raises(CheckpointError, match=r"pick one with checkpoint.dataset=camvid"):
        choose_checkpoint("best", logs)
    for name in ("eval", "benchmark", "export", "realtime"):
        cfg = _cfg(name, logs, tmp_path, "checkpoint.dataset=synthetic", "checkpoint.path=best")
        assert choose_checkpoint(cfg.checkpoint, logs).path == synthetic, name
        path_cfg = _cfg(name, logs, tmp_path, f"checkpoint={synthetic}")
        assert choose_checkpoint(path_cfg.checkpoint, logs).path == synthetic, name

    scores = evaluate(_cfg("eval", logs, tmp_path, "checkpoint.dataset=synthetic", "split=val"))
    assert 0 <= scores["miou"] <= 1
    subject, meta = load_subject(_cfg("benchmark", logs, tmp_path, "checkpoint.dataset=synthetic"))
    assert meta["dataset"] == "synthetic" and subject.net is not None
    bench_default = _cfg("benchmark", logs, tmp_path)  # no checkpoint key set: model=...
    assert load_subject(bench_default)[1]["val_miou"] is None
    pytest.importorskip("onnx")
    out = tmp_path / "exported"
    path, _ = run_export(
        _cfg("export", logs, tmp_path, "checkpoint.dataset=synthetic", f"out_dir={out}")
    )
    assert path.parent == out and path.is_file()
