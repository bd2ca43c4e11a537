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
            ["trainer.max_epochs=3", "trainer.devices=auto", "trainer.fast_dev_run=2", "+x=1"],
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
