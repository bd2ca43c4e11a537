"""Offline distillation: a teacher's stored probabilities, keyed by teacher, image and augmentation,
moved by the training augmentations with the image, rebuilt (never used) when they do not match."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from rtseg.data.base import PairedFiles
from rtseg.data.soft_targets import SoftTargets, TargetSet, image_hashes
from rtseg.data.transforms import build_transform
from rtseg.errors import DataError, RtsegError
from rtseg.training.teacher_targets import TeacherTargets
from rtseg.training.train import train
from rtseg.utils.config import compose_config

CLASSES = ["sky", "building", "road", "pavement", "tree", "car", "person"]  # the tiny teacher's 7


def write_folder(root: Path, n: int = 6, hw=(32, 48)) -> Path:
    """``root/images`` + ``root/masks``: random pictures, blocky labels of the 7 classes, a void strip."""
    rng = np.random.default_rng(0)
    for i in range(n):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        small = rng.integers(0, 7, (hw[0] // 8, hw[1] // 8)).astype(np.uint8)
        mask = np.kron(small, np.ones((8, 8), np.uint8))
        mask[:, :2] = 255
        Image.fromarray(image).save(root / "images" / f"f{i:02d}.png")
        Image.fromarray(mask, mode="L").save(root / "masks" / f"f{i:02d}.png")
    return root


def pairs_of(root: Path) -> list[tuple[Path, Path]]:
    images, masks = sorted((root / "images").glob("*.png")), sorted((root / "masks").glob("*.png"))
    return list(zip(images, masks, strict=True))


def manifest(sha: str = "a" * 64, classes: int = 7, stride: int = 1) -> dict:
    return {"teacher_sha256": sha, "tta": "flip", "input_size": [32, 48], "stride": stride,
            "num_classes": classes}  # fmt: skip


def test_an_entry_of_another_teacher_or_image_or_a_damaged_one_is_never_read(tmp_path):
    ts = TargetSet.create(tmp_path, manifest())
    probs = np.random.default_rng(0).dirichlet(np.ones(7), (16, 24)).transpose(2, 0, 1)
    ts.write("b" * 64, probs)
    got = ts.read("b" * 64, (16, 24))
    assert got.dtype == np.uint8 and got.shape == (7, 16, 24)
    assert np.abs(got / 255.0 - probs).max() <= 0.5 / 255 + 1e-6  # uint8: half a step at most
    # the same folder opened for other weights: the entry is not theirs
    other = TargetSet(tmp_path / ts.folder.name, manifest(sha="c" * 64))
    assert other.read("b" * 64, (16, 24)) is None
    # an entry renamed to another image's hash records the image it was made for
    ts.entry_path("b" * 64).rename(ts.entry_path("d" * 64))
    assert ts.read("d" * 64, (16, 24)) is None
    # an image of another size, a truncated file
    ts.write("b" * 64, probs)
    assert ts.read("b" * 64, (32, 48)) is None
    ts.entry_path("b" * 64).write_bytes(ts.entry_path("b" * 64).read_bytes()[:100])
    assert ts.read("b" * 64, (16, 24)) is None


def test_a_folder_whose_manifest_names_other_targets_is_refused(tmp_path):
    ts = TargetSet.create(tmp_path, manifest())
    data = json.loads((ts.folder / "manifest.json").read_text())
    data["num_classes"] = 5
    (ts.folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="describes other targets"):
        TargetSet.create(tmp_path, manifest())


def test_the_training_augmentations_move_the_targets_with_the_image(tmp_path):
    """Targets that are the label's one-hot stay the label through scale, pad, crop and flip."""
    root = write_folder(tmp_path / "data", n=4, hw=(64, 96))
    pairs = pairs_of(root)
    ds = PairedFiles(pairs, 7, verify=False)
    ts = TargetSet.create(tmp_path / "targets", manifest(stride=1))
    hashes = image_hashes([p for p, _ in pairs])
    for i, sha in enumerate(hashes):
        mask = ds.load(i)[1]
        onehot = np.eye(7, dtype=np.float32)[np.where(mask == 255, 0, mask)].transpose(2, 0, 1)
        ts.write(sha, onehot)
    ds.soft_targets = SoftTargets(ts, hashes, [(64, 96)] * len(hashes))
    cfg = compose_config(
        "train", ["data=camvid", "data.input_size=[64,96]", "data.crop_size=[48,64]"]
    )
    ds.transform = build_transform(instantiate(cfg.data.augmentations.train), [0.5] * 3, [0.5] * 3)
    flipped = 0
    for seed in range(12):
        ds.transform.set_random_seed(seed)
        image, mask, soft = ds[seed % len(ds)]
        assert soft.shape == (7, 48, 64) and soft.dtype == torch.uint8
        valid = mask != 255
        assert valid.sum() > 100
        assert torch.equal(soft.argmax(0)[valid], mask[valid])
        flipped += int(mask[0, 2] != ds.load(seed % len(ds))[1][0, 2])
    assert flipped, "no draw moved the labels: the check above would hold for any targets"


def test_a_missing_entry_stops_the_run_with_one_line(tmp_path):
    ts = TargetSet.create(tmp_path, manifest())
    with pytest.raises(DataError, match="1 of 1 training images have no valid entry"):
        SoftTargets(ts, ["e" * 64], [(32, 48)])


def _train_cfg(tmp_path, data_root, teacher, root, extra=()):
    return compose_config(
        "train",
        [
            f"paths.output_dir={tmp_path / 'run'}", f"paths.log_dir={tmp_path / 'logs'}",
            "data=folder", f"data.root={data_root}", "data.num_classes=7",
            f"data.class_names=[{','.join(CLASSES)}]", "data.input_size=[32,48]",
            "data.batch_size=2", "data.val_fraction=0.34", "model.width=8",
            "trainer.max_epochs=1", "trainer.enable_model_summary=false",
            "trainer.enable_progress_bar=false", "logger=csv", "~callbacks.progress_bar",
            "callbacks.model_cost.latency_min_runs=2", "callbacks.model_cost.latency_min_seconds=0",
            "test=false", "threads=1",
            "teacher_targets=camvid_450", f"teacher_targets.teacher={teacher}",
            "teacher_targets.tta=flip", "teacher_targets.input_size=[32,48]",
            f"teacher_targets.root={root}", "teacher_targets.weight=2.0",
            "teacher_targets.temperature=2.0", *extra,
        ],
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["logit", "cwd"])
def test_training_learns_from_the_stored_targets_and_records_them(tmp_path, tiny_ckpt, kind):
    data = write_folder(tmp_path / "data")
    root = tmp_path / "targets"
    train(_train_cfg(tmp_path, data, tiny_ckpt, root, [f"teacher_targets.kind={kind}"]))
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    kd = record["extra"]["teacher_targets"]
    assert kd["teacher"] == str(Path(tiny_ckpt).resolve()) and kd["tta"] == "flip"
    assert kd["weight"] == 2.0 and kd["temperature"] == 2.0 and len(kd["targets_digest"]) == 64
    assert kd["kind"] == kind and ("Shu" in kd["loss"]) == (kind == "cwd")
    assert "train/loss_targets" in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    (folder,) = root.iterdir()
    assert folder.name.startswith(kd["teacher_sha256"][:16] + "-flip-32x48-s2")
    entries = sorted(folder.glob("*.npz"))
    assert len(entries) == 5  # the training split: 6 images less val_fraction's 1
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "teacher_targets" not in saved["hyper_parameters"]


def test_targets_are_built_once_and_rebuilt_for_a_changed_teacher_or_a_tampered_entry(
    tmp_path, tiny_ckpt, checkpoint_writer
):
    data = write_folder(tmp_path / "data")
    pairs = pairs_of(data)
    ds = PairedFiles(pairs, 7, verify=False)
    root = tmp_path / "targets"
    first = TeacherTargets(str(tiny_ckpt), tta="flip", input_size=[32, 48], root=str(root))
    soft = first.prepare(ds, 7)
    entries = sorted(soft.target_set.folder.glob("*.npz"))
    assert len(entries) == 6
    stamps = {p: p.stat().st_mtime_ns for p in entries}
    again = TeacherTargets(str(tiny_ckpt), tta="flip", input_size=[32, 48], root=str(root))
    assert again.prepare(ds, 7).digest() == first.digest
    assert {p: p.stat().st_mtime_ns for p in entries} == stamps  # nothing rebuilt
    # an entry overwritten with another teacher's: rebuilt, and the digest is the first one again
    victim = entries[0]
    with np.load(victim) as z:
        probs = z["probs"]
    np.savez_compressed(victim, probs=probs, teacher_sha256=np.array("f" * 64),
                        image_sha256=np.array(victim.stem))  # fmt: skip
    os.utime(victim, ns=(1, 1))
    repaired = TeacherTargets(str(tiny_ckpt), tta="flip", input_size=[32, 48], root=str(root))
    assert repaired.prepare(ds, 7).digest() == first.digest
    assert victim.stat().st_mtime_ns != 1
    # other weights: another set, built from scratch; the first one stays as it was
    other = checkpoint_writer(tmp_path / "other.ckpt", width=4)
    changed = TeacherTargets(str(other), tta="flip", input_size=[32, 48], root=str(root))
    soft2 = changed.prepare(ds, 7)
    assert soft2.target_set.folder != soft.target_set.folder
    assert len(list(soft2.target_set.folder.glob("*.npz"))) == 6
    assert changed.digest != first.digest


def test_an_unknown_loss_kind_is_refused_with_the_valid_ones(tiny_ckpt):
    with pytest.raises(RtsegError, match="kind='kl': expected one of logit, cwd"):
        TeacherTargets(str(tiny_ckpt), kind="kl")


def test_a_teacher_of_other_classes_is_refused_before_anything_is_built(tmp_path, tiny_ckpt):
    data = write_folder(tmp_path / "data")
    pairs = pairs_of(data)
    ds = PairedFiles(pairs, 5, verify=False)
    tt = TeacherTargets(str(tiny_ckpt), tta="none", input_size=[32, 48], root=str(tmp_path / "t"))
    with pytest.raises(Exception, match="predicts 7 classes, the data 5"):
        tt.prepare(ds, 5)


def test_agreeing_pixels_leave_out_where_the_teacher_contradicts_the_label(tiny_ckpt):
    """pixels=agreeing: what the student says where the teacher is wrong costs nothing."""
    torch.manual_seed(0)
    soft = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    soft[:, 0] = 200  # the teacher says class 0 everywhere ...
    soft[:, 1] = 55
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[..., 2:] = 1  # ... the labels say class 1 on the right half
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    student = torch.randn(1, 3, 4, 4)
    other = student.clone()
    other[..., 2:] = torch.randn(1, 3, 4, 2) * 5  # changed only where the teacher is wrong
    agreeing = TeacherTargets(str(tiny_ckpt), pixels="agreeing")
    labelled = TeacherTargets(str(tiny_ckpt))
    assert torch.allclose(agreeing.loss(student, soft, valid, labels),
                          agreeing.loss(other, soft, valid, labels))  # fmt: skip
    assert not torch.allclose(labelled.loss(student, soft, valid, labels),
                              labelled.loss(other, soft, valid, labels))  # fmt: skip
    assert agreeing.record()["pixels"] == "agreeing"
    with pytest.raises(RtsegError, match="pixels='right': expected labelled or agreeing"):
        TeacherTargets(str(tiny_ckpt), pixels="right")
