"""Config values of the wrong type and overrides of groups a command does not have: one line,
exit 2, no run folder left behind (checked before Hydra makes one)."""

from __future__ import annotations

import pytest

from rtseg.errors import RtsegError
from rtseg.utils.cli import check_overrides

from .conftest import run_cli


@pytest.mark.parametrize(
    "config, override, message",
    [
        (
            "train",
            "trainer.max_epochs=abc",
            "expected a number like the default 10, got str 'abc'",
        ),
        ("train", "seed=true", "expected a number"),
        ("train", "trainer.enable_progress_bar=maybe", "expected true or false"),
        ("train", "module.optimizer.lr=fast", "expected a number"),
        ("train", "data.input_size=64", "expected a list"),
        ("benchmark", "backends=eager", "expected a list like the default"),
        ("realtime", "http.port=abc", "expected a number like the default 8080"),
        ("realtime", "rate=fast", "expected a number"),
        ("eval", "model=baseline", "rtseg-eval has no model group: the checkpoint fixes the model"),
        ("eval", "+model=baseline", "the checkpoint fixes the model"),
        ("realtime", "model.width=8", "rtseg-realtime has no model group"),
        ("export", "trainer=cpu", "rtseg-export has no trainer group"),
        ("train", "model=nosuch", "Could not find 'model/nosuch' (available: baseline,"),
        ("train", "trainer.max_epoch=3", "has no setting trainer.max_epoch (a typo?"),
        # a + key that reaches a constructor which does not take it (issue 36)
        (
            "train",
            "+trainer.max_epoch=1",
            "(lightning.Trainer) takes no argument max_epoch: did you mean max_epochs?",
        ),
        (
            "train",
            "+model.foo=1",
            "takes no argument foo: its arguments: in_channels, num_classes, width",
        ),
        # a new top-level key nothing reads (issue 36: accepted silently)
        ("train", "+foo=1", "no code reads a new top-level setting"),
        ("realtime", "+sorce=a.mp4", "did you mean source?"),
        # a typo in a sweep's second choice (issue 36: Hydra's 26 lines once the first job ran)
        ("train", "model=baseline,unet2", "Could not find 'model/unet2' (available: baseline,"),
    ],
)
def test_bad_overrides_are_one_line(config, override, message):
    with pytest.raises(RtsegError) as err:
        check_overrides(config, [override])
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "config, overrides",
    [
        (
            "train",
            ["trainer.max_epochs=3", "trainer.devices=auto", "trainer.fast_dev_run=2"],
        ),
        # a GPU job sent to SLURM from a login node without one: checked where it runs
        ("train", ["-m", "hydra/launcher=slurm", "trainer=gpu"]),
        # a new top-level key another override uses; + keys a constructor takes; new blocks
        ("train", ["+x=2", "trainer.max_epochs=${x}", "+model.in_channels=4"]),
        ("train", ["+trainer.benchmark=true", "++module.scheduler.time_budget_s=60"]),
        (
            "train",
            [
                "+callbacks.ema={_target_:rtseg.training.callbacks.EMA,decay:0.9995}",
                "+callbacks.stop._target_=tests.x.Stop",
                "+callbacks.stop.epoch=1",
            ],
        ),
        (
            "train",
            ["experiment=camvid_ppliteseg_lite0", "data.root=/nowhere", "trainer.max_epochs=null"],
        ),
        (
            "train",
            ["-m", "trainer.max_epochs=1,2", "~callbacks.progress_bar", "hydra.run.dir=/tmp/x"],
        ),
        ("eval", ["checkpoint.dataset=camvid", "split=val", "data=camvid"]),
        ("realtime", ["progress.log_every_s=0.2", "overlay.alpha=1"]),
        (
            "benchmark",
            ["backends=[eager]", "threads=[1]", "checkpoint=camvid", "input_size=[32,48]"],
        ),
        (
            "realtime",
            ["source=0", "source='rtsp://h/x?k=v'", "live=true", "rate=2", "checkpoint=camvid"],
        ),
    ],
)
def test_good_overrides_pass(config, overrides):
    check_overrides(config, overrides)


def test_a_sweep_value_of_the_wrong_type_is_caught():
    with pytest.raises(RtsegError, match="got str 'abc'"):
        check_overrides("train", ["-m", "trainer.max_epochs=1,abc"])


@pytest.mark.parametrize(
    "module, override, message",
    [
        ("rtseg.training.train", "trainer.max_epochs=abc", "expected a number"),
        ("rtseg.training.eval", "model=baseline", "the checkpoint fixes the model"),
    ],
)
def test_the_command_exits_2_in_one_line_and_leaves_no_run_folder(
    tmp_path, module, override, message
):
    proc = run_cli(module, override, f"paths.log_dir={tmp_path / 'logs'}")
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {override}: ") and message in lines[0]
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["+trainer.max_epoch=1"], "did you mean max_epochs?"),
        (["-m", "model=baseline,unet2"], "Could not find 'model/unet2'"),
    ],
)
def test_additions_and_sweeps_exit_2_in_one_line(tmp_path, args, message):
    proc = run_cli(
        "rtseg.training.train",
        *args,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()


def test_trainer_gpu_without_a_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    proc = run_cli("rtseg.training.train", "trainer=gpu", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "trainer=cpu" in lines[0], lines
    assert not (tmp_path / "run").exists()
