"""What an error message tells the user to type works as written (issue 37).

``checkpoint=best`` across datasets says "pick one with checkpoint.dataset=NAME": typed beside
``checkpoint=best`` (the user's own command line), it runs in rtseg-eval and rtseg-export as
processes. Every other override a message in src/ suggests passes the command's own checks and
composes.
"""

from __future__ import annotations

import re

import pytest

from rtseg.utils.cli import check_overrides, checkpoint_keys_kept
from rtseg.utils.config import compose_config
from tests.support import run_cli

from .test_checkpoint_keys import _run


@pytest.fixture
def two_datasets(tmp_path, tiny_checkpoint, tiny_ckpt):
    """A log folder with a trained synthetic run and a better run on another dataset: best is
    ambiguous, and the hint names synthetic (the first), whose run recorded its data config."""
    logs = tmp_path / "logs"
    synthetic = _run(logs, "syn", "synthetic", tiny_checkpoint, 0.3)
    _run(logs, "other", "voc", tiny_ckpt, 0.9)
    return logs, synthetic


def error_line(proc) -> str:
    """The one ``error: ...`` line of a refused command (no traceback, no Hydra error block)."""
    text = proc.stdout + proc.stderr
    lines = [ln for ln in text.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in text, text[-3000:]
    return lines[0]


def test_the_dataset_hint_runs_beside_checkpoint_best(two_datasets, tmp_path):
    logs, synthetic = two_datasets
    env = {"RTSEG_LOG_DIR": str(logs)}
    refused = run_cli(["rtseg-eval", "checkpoint=best", "split=val"], check=False, **env)
    assert refused.returncode == 2
    hint = re.search(r"pick one with (checkpoint\.dataset=\w+)$", error_line(refused))
    assert hint, error_line(refused)
    assert hint.group(1) == "checkpoint.dataset=synthetic"

    # the hint typed beside what the user typed, in either order
    ok = run_cli(["rtseg-eval", "checkpoint=best", hint.group(1), "split=val", "threads=1"], **env)
    assert "Could not override" not in ok.stdout + ok.stderr
    assert str(synthetic) in ok.stdout + ok.stderr
    assert list((logs / "eval" / "runs").glob("*/eval.json"))

    pytest.importorskip("onnx")
    out = tmp_path / "exported"
    run_cli(["rtseg-export", hint.group(1), "checkpoint=best", f"out_dir={out}"], **env)
    assert [p.name for p in out.glob("*.onnx")], sorted(out.iterdir())


@pytest.mark.parametrize("config", ["eval", "benchmark", "export", "realtime"])
def test_checkpoint_path_and_keys_compose_in_every_command(config):
    for line in (
        ["checkpoint=best", "checkpoint.dataset=camvid"],
        ["checkpoint.dataset=camvid", "checkpoint=best"],
        ["checkpoint=logs/train/runs/x", "checkpoint.experiment=e", "checkpoint.tag=t"],
    ):
        argv = checkpoint_keys_kept(config, line)
        check_overrides(config, argv)
        ckpt = compose_config(config, argv).checkpoint
        assert ckpt.path == line[-1 if line[-1].startswith("checkpoint=") else 0].split("=")[1]
        assert ckpt.dataset == "camvid" or ckpt.experiment == "e"
    # alone, checkpoint=X is the mapping's path too: checkpoint=best keeps the default's fallback
    assert checkpoint_keys_kept(config, ["checkpoint=best"]) == ["checkpoint.path=best"]
    assert compose_config(config, ["checkpoint.path=best"]).checkpoint.fallback == (
        compose_config(config, []).checkpoint.fallback
    )


# (command's config, what a message in src/ suggests, with what the user had typed before it)
SUGGESTED = [
    # checkpoints/spec.py: no trained run yet
    ("train", []),
    ("train", ["experiment=camvid_ppliteseg_lite0", "data.root=/path/to/camvid"]),
    # checkpoints/spec.py: runs of one dataset with different class sets
    ("eval", ["checkpoint=best", "checkpoint.experiment=camvid_ppliteseg_lite0"]),
    ("eval", ["checkpoint=logs/train/runs/x"]),
    # checkpoints/reading.py: a resumed checkpoint of another network
    ("train", ["model=unet", "model.encoder_name=resnet18"]),
    # models/smp.py: hub weights offline
    ("train", ["model=unet", "model.encoder_weights=efficientnet-lite0"]),
    # training/eval.py: no recorded data config / another class count
    ("eval", ["checkpoint=best", "data=synthetic"]),
    ("eval", ["checkpoint=best", "data=camvid", "data.root=/path/to/camvid"]),
    # utils/cli.py: a data.* setting without data=
    ("eval", ["checkpoint=best", "data=camvid", "data.root=/x"]),
    ("realtime", ["data=camvid", "data.root=/x"]),
    # data/datamodule.py, data/palette.py
    ("train", ["data.eval_native=false"]),
    ("train", ["data=folder", "data.root=/x", "data.class_names=[background,road]"]),
    # infer/calibration.py, infer/open.py: int8 needs the checkpoint's data
    ("export", ["checkpoint=camvid", "int8=true", "data=camvid", "data.root=/x"]),
    ("benchmark", ["checkpoint=camvid", "data=camvid", "data.root=/x"]),
    ("realtime", ["backend=openvino-int8", "data=camvid", "data.root=/x"]),
    ("realtime", ["reduced_precision.enforce=false"]),
    ("benchmark", ["reduced_precision.enforce=true"]),
    # infer/export.py: the name is taken
    ("export", ["checkpoint=camvid", "name=other", "out_dir=/tmp/elsewhere"]),
    # infer/auto.py: nothing measured for a live source
    ("realtime", ["live=false"]),
    ("benchmark", ["backends=[auto]"]),
    # realtime/http.py, sinks.py, stream_quality.py, infer/temporal.py
    ("realtime", ["sink=http", "http.port=8081"]),
    ("realtime", ["output=out.mp4", "overwrite=true"]),
    ("realtime", ["backend=openvino"]),
    ("realtime", ["temporal=ema", "workers=1"]),
    # utils/cli.py GROUP_HINTS: the checkpoint fixes the model
    ("eval", ["checkpoint=camvid"]),
]


@pytest.mark.parametrize("config, overrides", SUGGESTED)
def test_every_suggested_override_passes_the_checks_and_composes(config, overrides):
    argv = checkpoint_keys_kept(config, overrides)
    check_overrides(config, argv)
    compose_config(config, argv)
