"""The package as users get it: a wheel in a fresh virtualenv, used from an unrelated folder.

No network: the wheel is built with the running environment's setuptools and installed with
``--no-deps --no-index``; the fresh venv sees this environment's site-packages through a ``.pth``
line, which adds that folder to ``sys.path`` without running its own ``.pth`` files, so an
editable rtseg installed there cannot shadow the wheel (the test checks ``rtseg.__file__``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rtseg.errors import MissingExtra
from rtseg.utils.cli import require, user_errors_as_one_line
from rtseg.utils.paths import REPO_ROOT

from .conftest import FAST_TRAIN, TINY

OPTIONAL = ("onnx", "onnxruntime", "openvino", "optuna", "submitit")


def _run(args, cwd, env, timeout=180) -> subprocess.CompletedProcess:
    out = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert out.returncode == 0, f"{args[0]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh venv with the rtseg wheel (built from a copy of src/, conf/ and the build files)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    for name in ("src", "conf"):
        shutil.copytree(
            REPO_ROOT / name,
            source / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    (source / "conf" / "local" / "default.yaml").unlink(missing_ok=True)  # machine settings
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RTSEG_"))}
    env.update(NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="offline", WANDB_SILENT="true")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", source],
        root,
        None,
    )
    wheel = next((root / "dist").glob("rtseg-*.whl"))

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    _run([*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], root, env)
    # only now: pip would otherwise see the rtseg of this environment as already installed
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = root / "elsewhere"  # an unrelated folder: no conf/, no checkout
    work.mkdir()
    return {"venv": venv, "bin": venv / "bin", "env": env, "cwd": work}


def test_wheel_trains_evaluates_streams_and_predicts_from_any_folder(installed):
    bin_, env, cwd = installed["bin"], installed["env"], installed["cwd"]
    train = _run(
        [
            bin_ / "rtseg-train",
            *TINY,
            *FAST_TRAIN,
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "test=false",
        ],
        cwd,
        env,
    )
    runs = list((cwd / "logs" / "train" / "runs").iterdir())  # run folders relative to the CWD
    assert len(runs) == 1, train.stdout
    record = json.loads((runs[0] / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["git_commit"] is None  # an installed wheel is no checkout

    evaluated = _run(
        [bin_ / "rtseg-eval", "checkpoint=best", "split=val", "threads=1"],
        cwd,
        env,
    )
    assert "mIoU" in evaluated.stdout + evaluated.stderr

    _run(
        [
            bin_ / "rtseg-realtime",
            f"checkpoint={runs[0]}",
            "source=synthetic",
            "synthetic.frames=3",
            "synthetic.size=[64,80]",
            "backend=eager",
            "threads=1",
            "sink=file",
            "output=out.mp4",
        ],
        cwd,
        env,
    )
    assert (cwd / "out.mp4").stat().st_size > 0

    api = _run(
        [
            installed["venv"] / "bin" / "python",
            "-c",
            "import sys, numpy as np, rtseg, rtseg.utils.paths as u; m = rtseg.load('camvid');"
            " print(rtseg.__file__); print(u.CONF_DIR);"
            " print(m.predict(np.zeros((540, 960, 3), np.uint8)).shape);"
            f" print(sorted(set({OPTIONAL!r}) & set(sys.modules)))",
        ],
        cwd,
        env,
    )
    module_file, conf_dir, shape, optional = api.stdout.strip().splitlines()[-4:]
    assert Path(module_file).is_relative_to(installed["venv"]), module_file
    assert Path(conf_dir) == Path(module_file).parent / "conf"
    assert shape == "(540, 960)"
    assert optional == "[]", "the eager API imported an optional dependency"


def test_missing_extra_is_one_line_naming_the_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    with pytest.raises(MissingExtra) as err:
        require("openvino", "backend=openvino")
    assert str(err.value) == "backend=openvino needs OpenVINO: pip install 'rtseg[deploy]'"

    import rtseg

    @user_errors_as_one_line
    def load():
        return rtseg.load("camvid", backend="openvino")

    with pytest.raises(SystemExit) as stop:
        load()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: backend=openvino needs OpenVINO: pip install 'rtseg[deploy]'"
    )


def test_core_runs_without_the_optional_dependencies(tmp_path):
    """Train (CSV logger) and the eager API with onnx, ONNX Runtime, OpenVINO, Optuna unimportable."""
    block = "; ".join(f"sys.modules[{m!r}] = None" for m in OPTIONAL)
    overrides = [*TINY, *FAST_TRAIN, "trainer.fast_dev_run=true", f"hydra.run.dir={tmp_path}/run"]
    code = (
        f"import sys; {block}; sys.argv = ['rtseg-train', *{overrides!r}]\n"
        "import numpy as np, rtseg\n"
        "print(rtseg.load('camvid').predict(np.zeros((36, 48, 3), np.uint8)).shape)\n"
        "from rtseg.training.train import main\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    out = _run([sys.executable, "-c", code], tmp_path, env)
    assert "(36, 48)" in out.stdout
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "finished"


@pytest.mark.parametrize(
    "entrypoint, override",
    [
        ("rtseg.training.train", "hydra.run.dir={}/run"),
        ("rtseg.realtime.cli", "output={}/out.mp4"),
    ],
)
def test_output_path_below_a_file_is_one_line(entrypoint, override, tmp_path, monkeypatch, capsys):
    import importlib

    blocker = tmp_path / "somefile"
    blocker.write_text("keep me")
    arg = override.format(blocker)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [entrypoint, arg, f"paths.log_dir={tmp_path}/logs"])
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(entrypoint).main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {arg}: {blocker} is a file, expected a folder there"
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize(
    ("override", "module", "named"),
    [
        ("hparams_search=camvid_optuna", "optuna", "Optuna"),
        ("hydra/launcher=parallel", "hydra_plugins.hydra_joblib_launcher", "joblib"),
        ("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "submitit_slurm"),
    ],
)
def test_a_missing_sweep_plugin_is_one_line_before_hydra_composes(
    monkeypatch, capsys, override, module, named
):
    """Without the sweeps extra Hydra would fail composing the plugin's config, before any of our code."""
    from rtseg.utils.cli import command_line_checked

    ran = []
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(sys, "argv", ["rtseg-train", "-m", override, "model=baseline"])
    with pytest.raises(SystemExit) as stop:
        command_line_checked(lambda: ran.append(1))()
    assert stop.value.code == 2 and not ran
    line = capsys.readouterr().err.strip()
    assert named in line and line.endswith("pip install 'rtseg[sweeps]'"), line
    monkeypatch.delitem(sys.modules, module)  # installed: the entrypoint runs
    command_line_checked(lambda: ran.append(1))()
    assert ran == [1]
