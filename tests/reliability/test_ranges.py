"""Every numeric setting has its allowed range declared once (conf/ranges.yaml) and a value outside
it stops the command in one line before anything loads: on the command line (no run folder left),
in a composed config (an experiment file), and in rtseg.load."""

from __future__ import annotations

import pytest

from rtseg.errors import RtsegError
from rtseg.utils.cli import check_overrides
from rtseg.utils.config import compose_config
from rtseg.utils.paths import CONF_DIR
from rtseg.utils.ranges import check_ranges, ranges

from .conftest import run_cli

COMMANDS = ("train", "eval", "benchmark", "export", "realtime", "targets")


@pytest.mark.parametrize(
    "config, override, message",
    [
        ("train", "trainer.max_epochs=-5", "expected >= 1 or -1 or null, got -5"),
        ("train", "trainer.max_epochs=0", "got 0"),
        ("train", "data.batch_size=0", "expected >= 1, got 0"),
        ("train", "module.optimizer.lr=-1", "expected > 0, got -1"),
        ("train", "module.loss.boundary_width=0", "expected >= 1, got 0"),
        ("train", "data.input_size=[0,0]", "got 0 (in [0, 0])"),
        ("train", "-m", None),  # a flag alone: nothing to check
        ("realtime", "size=[0,0]", "got 0 (in [0, 0])"),
        ("realtime", "max_batch=0", "expected >= 1"),
        ("realtime", "threads=-1", "expected >= 1 and <= cpus or null (cpus = "),
        ("realtime", "http.port=70000", "expected 0..65535, got 70000"),
        ("realtime", "max_frames=0", "expected >= 1 or null"),
        ("realtime", "max_frames=-1", "expected >= 1 or null"),
        ("realtime", "workers=0", "expected >= 1"),
        ("realtime", "queue_size=0", "expected >= 1"),
        ("realtime", "overlay.alpha=5", "expected 0..1, got 5"),
        ("realtime", "temporal_filter.alpha=0", "expected > 0 and <= 1"),
        ("benchmark", "input_size=[0,0]", "got 0 (in [0, 0])"),
        ("benchmark", "threads=[2,0]", "got 0 (in [2, 0])"),
        ("export", "batch_size=0", "expected >= 1"),
    ],
)
def test_a_value_outside_its_range_is_one_line(config, override, message):
    if message is None:
        check_overrides(config, [override])
        return
    with pytest.raises(RtsegError) as err:
        check_overrides(config, [override])
    assert str(err.value).startswith(f"{override}: ") and message in str(err.value)


def test_a_sweep_value_outside_its_range_is_caught():
    with pytest.raises(RtsegError, match="got 0"):
        check_overrides("train", ["-m", "data.batch_size=8,0"])


@pytest.mark.parametrize(
    "good", ["trainer.max_epochs=-1", "trainer.max_epochs=null", "http.port=0"]
)
def test_edges_inside_the_range_pass(good):
    config = "realtime" if good.startswith("http") else "train"
    check_overrides(config, [good])


def test_every_range_names_a_setting_some_command_has():
    """A typo in conf/ranges.yaml would silently check nothing."""
    from omegaconf import OmegaConf

    composed = [compose_config(c, []) for c in COMMANDS]
    composed.append(compose_config("train", ["data=camvid"]))
    composed.append(compose_config("train", ["module.loss.ohem_thresh=0.7"]))
    missing = [
        key
        for key in ranges()
        if all(OmegaConf.select(c, key, default="<absent>") == "<absent>" for c in composed)
    ]
    assert not missing, missing


@pytest.mark.parametrize(
    "experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
)
def test_every_shipped_experiment_is_inside_the_ranges(experiment):
    check_ranges(compose_config("train", [f"experiment={experiment}"]))


def test_the_entrypoint_checks_its_composed_config(capsys):
    """Values from config files (an experiment, local/) are not on the command line: every
    entrypoint's one-line guard checks the composed config before the task runs."""
    from rtseg.utils.cli import user_errors_as_one_line

    cfg = compose_config("train", ["data.batch_size=0"])  # as if an experiment file set it
    ran = []
    with pytest.raises(SystemExit) as exit_:
        user_errors_as_one_line(ran.append)(cfg)
    assert exit_.value.code == 2 and not ran
    assert capsys.readouterr().err.strip() == "error: data.batch_size=0: expected >= 1, got 0"


def test_the_command_exits_2_and_leaves_no_run_folder(tmp_path):
    proc = run_cli("rtseg.realtime.cli", "http.port=70000", f"paths.log_dir={tmp_path / 'logs'}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: http.port=70000: expected 0..65535, got 70000"
    assert not (tmp_path / "logs").exists()


def test_rtseg_load_checks_its_size():
    import rtseg

    with pytest.raises(RtsegError, match=r"size=\[0, 0\]: expected >= 1"):
        rtseg.load("camvid", size=[0, 0])
    with pytest.raises(RtsegError, match="expected \\[H, W\\]"):
        rtseg.load("camvid", size=[360])


@pytest.mark.parametrize("config", [c for c in COMMANDS if c != "export"])  # export: no threads
def test_more_threads_than_cpus_is_one_line_naming_the_count(config):
    """threads=1000 (inside the old ">= 1") made three 1000-thread ONNX Runtime sessions that never
    delivered a frame (issue 36): the range is bounded by the CPUs this process may use."""
    from rtseg.utils.machine import usable_cpus

    value = "[1000]" if config == "benchmark" else "1000"
    with pytest.raises(RtsegError) as err:
        check_overrides(config, [f"threads={value}"])
    assert f"cpus = {usable_cpus()}: the CPUs this process may use" in str(err.value)
    assert "got 1000" in str(err.value)
    check_overrides(
        config, [f"threads={[usable_cpus()] if config == 'benchmark' else usable_cpus()}"]
    )


def test_rtseg_load_refuses_more_threads_than_cpus(tiny_ckpt):
    import rtseg
    from rtseg.utils.machine import usable_cpus

    with pytest.raises(RtsegError, match=rf"threads=1000: .*cpus = {usable_cpus()}"):
        rtseg.load(str(tiny_ckpt), threads=1000)


def test_the_command_line_says_it_before_a_run_folder_exists(tmp_path):
    proc = run_cli("rtseg.realtime.cli", "threads=1000", f"paths.log_dir={tmp_path / 'logs'}")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: threads=1000: expected >= 1 and <= cpus or null (cpus = ")
    assert not (tmp_path / "logs").exists()
