"""checkpoint=best ranks val mIoU only within one dataset and class set."""

from __future__ import annotations

import pytest

from rtseg.checkpoints.spec import choose_checkpoint
from rtseg.errors import CheckpointError
from rtseg.tracking.runs import RunRecord


def _run(log_dir, name, dataset, classes, miou):
    run = log_dir / name
    ckpt = run / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    rec = RunRecord(
        run_dir=str(run),
        status="finished",
        dataset=dataset,
        num_classes=len(classes),
        class_names=classes,
        val_miou_best=miou,
        best_ckpt=str(ckpt),
    )
    rec.save()
    return ckpt


def test_best_refuses_to_compare_datasets_and_names_how_to_pick(tmp_path):
    _run(tmp_path, "syn", "synthetic", list("abcdefg"), 0.87)
    camvid = _run(tmp_path, "cam", "camvid", list("abcdefghijk"), 0.60)
    with pytest.raises(
        CheckpointError, match=r"different datasets.*synthetic.*87\.00.*checkpoint.dataset="
    ):
        choose_checkpoint("best", tmp_path)
    choice = choose_checkpoint({"path": "best", "dataset": "camvid"}, tmp_path)
    assert choice.path == camvid


def test_best_refuses_two_class_sets_of_one_dataset(tmp_path):
    _run(tmp_path, "full", "synthetic", list("abcdefg"), 0.7)
    _run(tmp_path, "binary", "synthetic", ["background", "road"], 0.9)
    with pytest.raises(CheckpointError, match="class sets"):
        choose_checkpoint({"path": "best", "dataset": "synthetic"}, tmp_path)


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file or a run folder"):
        choose_checkpoint(str(tmp_path), tmp_path)
    (tmp_path / "epoch3.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="pass a file: checkpoint=.*epoch3.ckpt"):
        choose_checkpoint(str(tmp_path), tmp_path)


def test_best_falls_back_to_a_shipped_model_only_when_nothing_was_trained(tmp_path):
    spec = {"path": "best", "fallback": "camvid"}
    choice = choose_checkpoint(spec, tmp_path)
    assert str(choice.path) == "camvid" and "no trained run" in choice.reason
    with pytest.raises(CheckpointError, match="no trained run"):  # no fallback: refused
        choose_checkpoint("best", tmp_path)
    with pytest.raises(CheckpointError, match="not a shipped model"):
        choose_checkpoint({"path": "best", "fallback": "nope"}, tmp_path)
    trained = _run(tmp_path, "syn", "synthetic", list("abcdefg"), 0.5)
    assert choose_checkpoint(spec, tmp_path).path == trained
