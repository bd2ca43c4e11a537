"""The training stack end to end on tiny synthetic data: fit, checkpoints, eval, resume, errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from rtseg.checkpoints.reading import load_network
from rtseg.errors import CheckpointError, DataError
from rtseg.models.baseline import ThreeConvNet
from rtseg.models.output import logits_to_labels
from rtseg.training.eval import evaluate
from rtseg.training.train import train
from rtseg.utils.cli import user_errors_as_one_line

from ..conftest import FAST_TRAIN, TINY


def test_baseline_is_exactly_the_seed_network():
    net = ThreeConvNet(num_classes=7)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (3, 64, (3, 3), (1, 1)),
        (64, 64, (3, 3), (1, 1)),
        (64, 7, (3, 3), (1, 1)),
    ]
    assert sum(p.numel() for p in net.parameters()) == (3 * 9 * 64 + 64) + (64 * 9 * 64 + 64) + (
        64 * 9 * 7 + 7
    )
    x = torch.randn(2, 3, 37, 51)
    assert net(x).shape == (2, 7, 37, 51)  # same padding: any size in, same size out
    binary = ThreeConvNet(num_classes=1)
    y = binary(x)
    assert y.shape == (2, 1, 37, 51) and y.abs().max() <= 1  # tanh output


def test_fit_raises_val_miou_well_above_chance(compose_cfg, tmp_path):
    cfg = compose_cfg(
        overrides=[
            *TINY,
            *FAST_TRAIN,
            "model=baseline",
            "trainer.max_epochs=4",
            "data.lengths.train=64",
        ]
    )
    results = train(cfg)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    # a uniform-random labelling of 7 classes scores about 1/13 mIoU
    assert results["val/miou_best"] > 0.3
    assert record["status"] == "finished" and record["val_miou_best"] == pytest.approx(
        results["val/miou_best"], abs=1e-6
    )
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert any(r.get("val/miou") for r in rows)
    best = Path(record["best_ckpt"])
    assert best.is_file() and best.suffix == ".ckpt" and (best.parent / "last.ckpt").is_file()
    assert record["params"] > 0 and record["gflops"] > 0 and record["latency_ms"] > 0


def test_overfits_one_batch(compose_cfg):
    """The module's loss and forward memorise one batch: a U-Net reaches mIoU 0.95 on it within
    150 steps (about 75 here). The three-conv baseline is not asked to: it sees 7x7 pixels and
    cannot tell road from pavement by design (it plateaued at 0.88 after 300 steps)."""
    from rtseg.models.smp import create

    cfg = compose_cfg(
        overrides=[
            *TINY,
            *FAST_TRAIN,
            "model=baseline",
            "data.lengths.train=8",
            "data.augmentations.train=null",
        ]
    )
    L.seed_everything(0)
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    images, masks = next(iter(dm.train_dataloader()))
    module = instantiate(cfg.module, net=instantiate(cfg.model), meta={}, _convert_="all")
    module.net = create("Unet", 7, encoder_name="resnet18", decoder_channels=[64, 32, 16, 16, 16])
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    scores = []
    for step in range(1, 151):
        opt.zero_grad()
        module.loss_fn(module(images), masks).backward()
        opt.step()
        if step % 25 == 0:
            module.eval()
            metric = module.metrics["val_scores"]
            metric.reset()
            with torch.no_grad():
                metric.update(logits_to_labels(module(images)), masks)
            scores.append(metric.compute()["miou"].item())
            module.train()
            if scores[-1] >= 0.95:
                break
    assert scores[-1] >= 0.95, f"mIoU every 25 steps: {scores}"


def test_train_then_eval_reproduces_test_metric(compose_cfg, tmp_path):
    cfg = compose_cfg(overrides=[*TINY, *FAST_TRAIN, "model=baseline", "trainer.max_epochs=2"])
    results = train(cfg)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    # no model= or data=: both are rebuilt from what the checkpoint recorded
    ecfg = compose_cfg(
        "eval",
        [
            f"checkpoint={tmp_path / 'run'}",
            "split=test",
            "threads=1",
            "trainer.enable_progress_bar=false",
        ],
        run_dir=tmp_path / "eval",
    )
    scores = evaluate(ecfg)
    assert scores["miou"] == pytest.approx(results["test/miou"], abs=1e-6)
    assert record["test_miou"] == pytest.approx(scores["miou"], abs=1e-6)
    net, meta = load_network(record["best_ckpt"])
    assert meta["class_names"][2] == "road" and meta["val_miou"] == pytest.approx(
        record["val_miou_best"], abs=1e-6
    )


def test_no_test_split_means_no_test_stage(compose_cfg, tmp_path, capsys):
    cfg = compose_cfg(
        overrides=[
            *TINY,
            *FAST_TRAIN,
            "model=baseline",
            "trainer.max_epochs=1",
            "data.datasets.test=null",
        ]
    )
    results = train(cfg)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["test_split"] == "none" and record["test_miou"] is None
    assert not any(k.startswith("test/") for k in results)
    ecfg = compose_cfg(
        "eval",
        [f"checkpoint={tmp_path / 'run'}", "split=test", "threads=1"],
        run_dir=tmp_path / "e",
    )
    with pytest.raises(SystemExit) as exit_info:
        user_errors_as_one_line(evaluate)(ecfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "error: data synthetic has no test split (has train, val): nothing to score "
        "(split=val scores the val split)"
    )


def test_no_val_split_keeps_the_last_weights_whatever_the_val_cadence(compose_cfg, tmp_path):
    """data.val_protocol=trainval (no val): every epoch must still end in a checkpoint, also when
    the config validates every other epoch (the CamVid recipe does)."""
    cfg = compose_cfg(
        overrides=[
            *TINY,
            *FAST_TRAIN,
            "model=baseline",
            "trainer.max_epochs=3",
            "trainer.check_val_every_n_epoch=2",
            "data.datasets.val=null",
        ]
    )
    train(cfg)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "finished" and record["epochs"] == 3
    assert record["last_ckpt"] and Path(record["last_ckpt"]).is_file()
    saved = torch.load(record["last_ckpt"], map_location="cpu", weights_only=True)
    assert saved["epoch"] == 2 and record["val_miou_best"] is None


def test_the_last_epoch_is_validated_whatever_the_val_cadence(compose_cfg, tmp_path):
    """One epoch of a recipe that validates every other epoch (the CamVid recipes do) still ends
    validated and checkpointed, with the last epoch's weights."""
    cfg = compose_cfg(
        overrides=[
            *TINY,
            *FAST_TRAIN,
            "model=baseline",
            "trainer.max_epochs=3",
            "trainer.check_val_every_n_epoch=2",
        ]
    )
    train(cfg)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "finished" and record["val_miou_best"] is not None
    saved = torch.load(record["last_ckpt"], map_location="cpu", weights_only=True)
    assert saved["epoch"] == 2  # the third epoch, validated (gcd(2, 3) = 1)


class InterruptAt(L.Callback):
    """Simulates Ctrl-C (or, with ``error``, a crash) at the start of a given epoch."""

    def __init__(self, epoch: int, error: bool = False):
        self.epoch, self.error = epoch, error

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("boom") if self.error else KeyboardInterrupt


def test_a_failed_run_is_recorded_once_with_its_error(compose_cfg, tmp_path):
    crash = [
        f"+callbacks.crash._target_={__name__}.InterruptAt",
        "+callbacks.crash.epoch=1",
        "+callbacks.crash.error=true",
    ]
    with pytest.raises(RuntimeError, match="boom"):
        train(compose_cfg(overrides=[*TINY, *FAST_TRAIN, "trainer.max_epochs=2", *crash]))
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == "RuntimeError: boom"
    assert record["epochs"] == 1 and record["ended"]


class FirstEpoch(L.Callback):
    first: int | None = None

    def on_train_epoch_start(self, trainer, pl_module):
        if FirstEpoch.first is None:
            FirstEpoch.first = trainer.current_epoch


def test_interrupted_run_resumes_at_the_right_epoch(compose_cfg, tmp_path):
    base = [*TINY, *FAST_TRAIN, "model=baseline", "trainer.max_epochs=3"]
    stop = [f"+callbacks.interrupt._target_={__name__}.InterruptAt", "+callbacks.interrupt.epoch=2"]
    with pytest.raises(
        (KeyboardInterrupt, SystemExit)
    ):  # Lightning exits 1 after a graceful Ctrl-C
        train(compose_cfg(overrides=base + stop))
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    FirstEpoch.first = None
    train(compose_cfg(overrides=[*base, f"+callbacks.first._target_={__name__}.FirstEpoch"]))
    assert FirstEpoch.first == 2  # continued where it stopped, not from scratch
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "finished" and record["epochs"] == 3
    epochs = {
        r["epoch"]
        for r in csv.DictReader((tmp_path / "run" / "metrics.csv").open())
        if r.get("val/miou")
    }
    assert {"0", "1", "2"} <= epochs  # the first session's metrics survive the resume


def test_last_ckpt_holds_the_last_epoch_when_the_best_was_earlier(compose_cfg, tmp_path):
    """Lightning >= 2.6 wrote save_last only with a new best: a resume went back to the best epoch."""
    # lr 1e-30 leaves the BN-free baseline's weights as they are: val mIoU never beats epoch 0
    overrides = [*TINY, *FAST_TRAIN, "model=baseline", "trainer.max_epochs=3", "test=false"]
    train(compose_cfg(overrides=[*overrides, "module.optimizer.lr=1e-30"]))
    ckpts = tmp_path / "run" / "checkpoints"
    (best,) = ckpts.glob("best-*.ckpt")
    assert best.name.startswith("best-epoch000")
    last = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2 and last["global_step"] == 3 * 4  # 32 images, batch 8
    assert not list(ckpts.glob(".*"))  # no temporary file left behind
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["last_ckpt"] == str((ckpts / "last.ckpt").resolve())


def test_checkpoint_from_other_model_or_class_count_is_refused(compose_cfg, tmp_path):
    cfg = compose_cfg(
        overrides=[*TINY, *FAST_TRAIN, "model=baseline", "trainer.max_epochs=1", "test=false"]
    )
    train(cfg)
    ckpt = json.loads((tmp_path / "run" / "run.json").read_text())["best_ckpt"]
    other_classes = compose_cfg(
        "eval",
        [
            *TINY,
            "data.num_classes=3",
            "data.class_names=[a,b,c]",
            "data.palette=[[0,0,0],[255,0,0],[0,255,0]]",
            f"checkpoint={ckpt}",
        ],
        run_dir=tmp_path / "e1",
    )
    with pytest.raises(CheckpointError, match="trained for 7 classes.*data=synthetic"):
        evaluate(other_classes)
    other_model = compose_cfg(overrides=[*TINY, *FAST_TRAIN, "model=unet", f"ckpt_path={ckpt}"])
    with pytest.raises(CheckpointError, match="ThreeConvNet"):
        train(other_model)
    with pytest.raises(CheckpointError, match="not found"):
        load_network(tmp_path / "nope.ckpt")


def test_binary_tanh_form_trains(compose_cfg):
    cfg = compose_cfg(
        overrides=[
            *TINY,
            *FAST_TRAIN,
            "model=baseline",
            "model.num_classes=1",
            "data.binary_class=0",
            "trainer.max_epochs=2",
            "test=false",
        ]
    )
    results = train(cfg)
    # sky vs rest is separable by colour and position: well above the 0.5 of guessing one class
    assert results["val/miou_best"] > 0.6 and not math.isnan(results["val/loss"])


def test_online_without_a_server_falls_back_offline_and_keeps_the_record(
    compose_cfg, tmp_path, monkeypatch, caplog, tiny_train_overrides
):
    from ..tracking.wandb_offline import offline_runs

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:1")  # refused at once: no server
    cfg = compose_cfg(
        overrides=[*tiny_train_overrides, "logger=wandb", "trainer.fast_dev_run=true"]
    )
    assert cfg.logger.wandb.mode == "online"
    with caplog.at_level("WARNING", logger="rtseg.wandb"):
        train(cfg)
    warnings = [r.getMessage() for r in caplog.records if r.name == "rtseg.wandb"]
    assert len(warnings) == 1 and "logging offline instead" in warnings[0]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "finished"
    assert len(offline_runs(tmp_path / "run")) == 1


def test_missing_data_stops_the_run_before_the_precision_probe(compose_cfg, tmp_path, monkeypatch):
    """Issue 37: rtseg-train without data.root probed precision for minutes before saying so."""
    import rtseg.training.train as train_module

    def probe(*args, **kwargs):
        raise AssertionError("the precision probe ran before the data was checked")

    monkeypatch.setattr(train_module, "choose_format", probe)
    cfg = compose_cfg(overrides=["data=camvid", f"data.root={tmp_path / 'no_camvid'}", "threads=1"])
    with pytest.raises(DataError, match="no_camvid"):
        train(cfg)
