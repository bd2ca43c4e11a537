"""The documented commands, run: every command of README.md and docs/*.md that runs in under a
minute on synthetic data runs here, in a temporary folder, and the files and columns the docs name
are checked.

test_docs.py composes every command in-process (a renamed key fails in seconds); this module runs
them as processes. Each command is either in ``RUNS`` (a test below runs it) or matched by a rule
of ``NOT_RUN`` that says why not (CamVid, a camera, a server, minutes of work): a command added to
the docs fails ``test_every_documented_command_runs_or_says_why`` until it is put in one of them.

Training commands run with ``SMALL`` in place of their own values of those keys (the README's
"Tests and CI" says so): one epoch on 32 synthetic scenes of 64x80.

The split. The default suite (``make test``) runs the classification and the leaderboard commands
(``rtseg-compare``, ``make leaderboard``) on a run record: a few seconds each, no network, no
training. Every other run is ``@pytest.mark.slow`` (``make test-all``): each is a process that
imports torch and Lightning (10-20 s of CPU before any work) and then trains, exports, calibrates
int8 or benchmarks; on the loaded 2-core EPYC these took 1-3 min of wall time each, together more
than the whole default suite is allowed to grow by.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .support import BIN, REPO
from .test_docs import documented_commands

# in place of the command's own values of these keys (training commands only)
SMALL = {
    "data.input_size": "[64,80]",
    "data.lengths": "{train:32,val:16,test:16}",
    "data.batch_size": "8",
    "data.val_batch_size": "16",
    "trainer.max_epochs": "1",
}
CPUS = len(os.sched_getaffinity(0))
CLIP = REPO.parent / "shared" / "data" / "video" / "solidWhiteRight.mp4"

# the commands a test below runs (as test_docs extracts them, ``.venv/bin/`` left out)
RUNS = {
    "rtseg-train": "test_train_eval_export_bench_realtime",
    "rtseg-eval 'checkpoint=logs/train/runs/<run>' split=test": "test_train_eval_export_bench_realtime",
    "rtseg-export checkpoint=best int8=true name=best out_dir=exports": "test_train_eval_export_bench_realtime",
    "rtseg-bench checkpoint=exports/best.int8.onnx 'backends=[eager,onnxruntime,openvino]'": "test_train_eval_export_bench_realtime",
    "rtseg-realtime checkpoint=logs/demo/train source=synthetic sink=none benchmark=true temporal=ema": "test_train_eval_export_bench_realtime",
    "rtseg-train debug=fdr": "test_debug_fdr",
    "rtseg-train model=unet model.encoder_name=resnet18 trainer.max_epochs=20": "test_train_unet",
    "rtseg-train -m data=synthetic model=baseline,unet,fastscnn": "test_grid_sweep",
    "make benchmark-quick": "test_benchmark_quick",
    "rtseg-export checkpoint=camvid format=onnx out_dir=exports": "test_export_camvid",
    "rtseg-realtime checkpoint=camvid source=../shared/data/video/solidWhiteRight.mp4 sink=folder output=frames max_frames=3 backend=eager": "test_readme_picture",
    "rtseg-compare": "test_compare",
    "rtseg-compare 'logs/train/multiruns/<sweep>'": "test_compare",
    "make leaderboard": "test_compare",
}  # fmt: skip

# (pattern searched in the command, why it is not run); the first match counts
NOT_RUN = [
    (r"^pip install", "installs packages: needs the package index"),
    (r"^make (demo|test)$", "the README's two commands: 12 and 20 min (README)"),
    (r"^make benchmark$", "the full fps table: every backend of six models at 360x480, an hour"),
    (r"^make wandb-sync$", "uploads to W&B: needs an account and the network"),
    (r"^make optuna-dashboard", "serves a dashboard until Ctrl-C (tests/tracking/test_optuna_dashboard.py)"),
    (r"^export ", "sets shell variables"),
    (r"slurm", "submits to a SLURM cluster (tests/tracking/test_launchers.py)"),
    (r"sink=http", "serves a live page until Ctrl-C (tests/realtime/ runs the server)"),
    (r"data=camvid|experiment=camvid|hparams_search=camvid|data\.root=|checkpoint\.dataset=camvid",
     "needs the CamVid data set, not in a fresh clone (its tests skip without it)"),
    (r"road\.mp4|clip\.mp4|solidWhiteRight|/dev/video|rtsp://|frames/\*|model\.onnx",
     "reads a video, camera, stream or file the reader brings"),
    (r"hparams_search=|hydra/launcher=",
     "several full trainings (presets, Optuna trials, launchers): minutes to hours; the grid above runs"),
    (r"^rtseg-compare logs/train/multiruns/optuna_synthetic$", "reads the Optuna sweep of the commands before it"),
    (r"^rtseg-realtime$|^rtseg-realtime 'checkpoint=logs/train/runs/<stamp>'$",
     "backend=auto measures its candidates before the first frame: minutes"),
    (r"backends=\[eager,onnxruntime,openvino,auto\]", "auto measures its candidates at 360x480: minutes"),
    (r"^rtseg-bench -m bench=", "three models at 360x480 on every default backend with peers: minutes"),
    (r"^make realtime-demo$", "the best run on the dash-cam clip with backend=auto measuring first: minutes"),
    (r"model=baseline,unet,fastscnn 'data.input_size=\[96,128\],\[128,160\]'",
     "the README's grid (run above) at two input sizes of its own: 6 trainings, minutes"),
]  # fmt: skip


def key(command: str) -> str:
    """The command with its program's folder left out (``.venv/bin/rtseg-x`` -> ``rtseg-x``);
    leading ``NAME=value`` words are kept."""
    words = shlex.split(command)
    i = next(i for i, w in enumerate(words) if not re.match(r"^[A-Z_][A-Z0-9_]*=", w))
    return shlex.join([*words[:i], words[i].rsplit("/", 1)[-1], *words[i + 1 :]])


def documented() -> list[tuple[str, str]]:
    return [(doc, key(cmd)) for doc, cmd in documented_commands()]


def why_not(command: str) -> str | None:
    return next((why for pattern, why in NOT_RUN if re.search(pattern, command)), None)


def test_every_documented_command_runs_or_says_why():
    """Each documented command is run by a test of this module or matched by a NOT_RUN reason."""
    unclassified = [
        f"{doc}: {cmd}" for doc, cmd in documented() if cmd not in RUNS and why_not(cmd) is None
    ]
    assert not unclassified, f"put these in RUNS or NOT_RUN: {unclassified}"
    shown = {cmd for _, cmd in documented()}
    gone = sorted(set(RUNS) - shown)
    assert not gone, f"RUNS names commands the docs no longer show: {gone}"
    tests = {name for name in globals() if name.startswith("test_")}
    assert set(RUNS.values()) <= tests, set(RUNS.values()) - tests


def small(args: list[str]) -> list[str]:
    """A training command's overrides with SMALL's values in place of its own."""
    kept = [a for a in args if a.split("=", 1)[0] not in SMALL]
    return [*kept, *(f"{k}={v}" for k, v in SMALL.items())]


def env_for(log_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RTSEG_LOG_DIR", "RTSEG_SOURCE")}
    env.update(NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="offline", WANDB_SILENT="true")
    if log_dir is not None:
        env["RTSEG_LOG_DIR"] = str(log_dir)
    return env


def run_doc(command: str, cwd: Path, timeout: int = 900, **subst: str) -> str:
    """Run a documented command (RUNS' key) in ``cwd``: ``<name>`` placeholders from ``subst``,
    training commands made small, ``make`` in the repo with its runs under ``cwd/logs``. Returns
    stdout + stderr; fails with their tail on a non-zero exit."""
    assert command in RUNS, command
    for name, value in subst.items():
        command = command.replace(f"<{name}>", value)
    program, *args = shlex.split(command)
    # rtseg-bench measures at threads=[2] unless told; a test process pinned to fewer CPUs (taskset)
    # is refused that, so it measures at the CPUs it has
    pinned = [f"threads=[{CPUS}]"] if CPUS < 2 else []
    if program == "make":  # the runs go to cwd/logs (RTSEG_LOG_DIR, which make honours too)
        # -o: an installed .venv is used as it is, never reinstalled by the test
        extra = [f"ARGS={' '.join(pinned)}"] if pinned and "benchmark" in command else []
        argv = ["make", "-o", ".venv/.installed", *args, *extra]
        where, env = REPO, env_for(cwd / "logs")
    else:
        if program == "rtseg-train":
            args = small(args)
        if program == "rtseg-bench":
            args = [*args, *pinned]
        argv, where, env = [str(BIN / program), *args], cwd, env_for()
    proc = subprocess.run(argv, cwd=where, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{command} exited {proc.returncode}:\n{out[-4000:]}"
    return out


def columns(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_run_folder(run: Path) -> dict:
    """docs/training.md's run folder: the files, metrics.csv's columns, run.json's fields."""
    for name in ("config.yaml", "metrics.csv", "run.json", "confusion_matrix.png",
                 "class_iou.png", "learning_curves.png", "checkpoints/last.ckpt"):  # fmt: skip
        assert (run / name).is_file(), f"{run}: no {name}"
    assert list((run / "checkpoints").glob("best-*.ckpt")), f"{run}: no checkpoints/best-*.ckpt"
    header = columns(run / "metrics.csv")
    # train/val/test loss, mIoU, pixel accuracy, per-class IoU
    for stage in ("train", "val", "test"):
        assert any(c.startswith(f"{stage}/") and "loss" in c for c in header), (stage, header)
    for name in ("val/miou", "test/miou"):
        assert name in header, (name, header)
    assert any("acc" in c for c in header), header
    assert any(c.startswith("val/iou") for c in header), header
    record = json.loads((run / "run.json").read_text())
    # status, best val mIoU, per-class IoU, test mIoU and its split, params, GFLOPs, latency,
    # git commit, seed
    for field in ("status", "val_miou_best", "val_iou", "test_miou", "test_split", "params",
                  "gflops", "latency_ms", "git_commit", "seed"):  # fmt: skip
        assert field in record, f"run.json has no {field}"
    assert record["status"] == "finished", record["status"]
    return record


def the_run(logs: Path, task: str = "train") -> Path:
    """The one run folder ``logs/<task>/runs/<date>_<time>_<pid><token>/``."""
    (run,) = (logs / task / "runs").iterdir()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\w+", run.name), run.name
    return run


# -- the default suite: seconds ------------------------------------------------------------------

LEADERBOARD_COLUMNS = ["run", "data", "model", "encoder", "input_size", "val_miou", "fps",
                       "backend", "gflops", "params_m", "date", "state"]  # fmt: skip


def test_compare(tmp_path):
    """docs/tracking.md: rtseg-compare (every run under logs/), rtseg-compare <sweep>, make
    leaderboard; each writes DIR/leaderboard.csv (run, data, model, ... state) and leaderboard.png."""
    record = {
        "task": "train", "status": "finished", "started": 1.0e9, "ended": 1.0e9 + 60,
        "dataset": "synthetic", "model": "baseline", "encoder": None, "input_size": [64, 80],
        "num_classes": 7, "overrides": ["model=baseline"], "params": 42759, "gflops": 0.47,
        "latency_ms": 2.0, "fps": 500.0, "latency_backend": "eager-fp32", "epochs": 1,
        "val_miou_best": 0.25, "test_miou": 0.24, "test_split": "test", "seed": 42,
    }  # fmt: skip
    sweep = tmp_path / "logs/train/multiruns/2026-01-01_00-00-00_ab12"
    for folder in (tmp_path / "logs/train/runs/2026-01-01_00-00-00_1a2b", sweep / "0"):
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({**record, "run_dir": str(folder)}))

    out = run_doc("rtseg-compare", tmp_path, timeout=300)
    assert "2 runs" in out, out
    assert (
        columns(tmp_path / "logs/leaderboard.csv")[: len(LEADERBOARD_COLUMNS)]
        == LEADERBOARD_COLUMNS
    )
    assert (tmp_path / "logs/leaderboard.png").stat().st_size > 0

    run_doc("rtseg-compare 'logs/train/multiruns/<sweep>'", tmp_path, sweep=sweep.name)
    assert len(rows(sweep / "leaderboard.csv")) == 1
    assert (sweep / "leaderboard.png").is_file()

    (tmp_path / "logs/leaderboard.csv").unlink()
    run_doc("make leaderboard", tmp_path)  # reads RTSEG_LOG_DIR (= tmp_path/logs here)
    assert len(rows(tmp_path / "logs/leaderboard.csv")) == 2


# -- the rest: processes that train, export, calibrate or benchmark (make test-all) --------------


@pytest.mark.slow
def test_train_eval_export_bench_realtime(tmp_path):
    """The README's rtseg-train (runs under ./logs/), rtseg-eval of its run folder, and
    docs/benchmark.md's int8 export and its benchmark, then docs/realtime.md's run of the
    folder make demo trains into (here the same run, copied there)."""
    run_doc("rtseg-train", tmp_path)
    run = the_run(tmp_path / "logs")
    check_run_folder(run)

    out = run_doc(
        "rtseg-eval 'checkpoint=logs/train/runs/<run>' split=test", tmp_path, run=run.name
    )
    assert re.search(r"mIoU", out) and "pixel acc" in out.lower(), out[-2000:]
    for name in json.loads((run / "run.json").read_text())["val_iou"]:
        assert name in out, f"the per-class table has no {name}"

    run_doc("rtseg-export checkpoint=best int8=true name=best out_dir=exports", tmp_path)
    onnx, sidecar = tmp_path / "exports/best.int8.onnx", tmp_path / "exports/best.int8.json"
    assert onnx.is_file(), sorted(p.name for p in (tmp_path / "exports").iterdir())
    assert sidecar.is_file(), sorted(p.name for p in (tmp_path / "exports").iterdir())

    run_doc(
        "rtseg-bench checkpoint=exports/best.int8.onnx 'backends=[eager,onnxruntime,openvino]'",
        tmp_path,
    )
    bench = the_run(tmp_path / "logs", "bench")
    for name in ("results.csv", "results.json", "results.md", "fps.png"):
        assert (bench / name).is_file(), f"{bench}: no {name}"
    backends = {r["backend"] for r in rows(bench / "results.csv")}
    assert {"eager", "onnxruntime", "openvino"} <= backends, backends

    shutil.copytree(run, tmp_path / "logs/demo/train")
    cmd = "rtseg-realtime checkpoint=logs/demo/train source=synthetic sink=none benchmark=true temporal=ema"
    run_doc(cmd, tmp_path)
    real = the_run(tmp_path / "logs", "realtime")
    for name in ("realtime.log", "realtime.json", "realtime.csv"):
        assert (real / name).is_file(), f"{real}: no {name}"
    (summary,) = rows(real / "realtime.csv")
    for name in ("tc", "change_rate"):  # docs/realtime.md: the video quality columns
        assert summary.get(name) not in (None, ""), (name, summary)
    report = json.loads((real / "realtime.json").read_text())
    assert "stream_quality" in report, sorted(report)


@pytest.mark.slow
def test_debug_fdr(tmp_path):
    """README: ``rtseg-train debug=fdr``, one batch through everything (the test batch too)."""
    run_doc("rtseg-train debug=fdr", tmp_path)
    run = the_run(tmp_path / "logs", "debug")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "finished" and record["test_miou"] is not None, record


@pytest.mark.slow
def test_train_unet(tmp_path):
    run_doc("rtseg-train model=unet model.encoder_name=resnet18 trainer.max_epochs=20", tmp_path)
    record = check_run_folder(the_run(tmp_path / "logs"))
    assert (record["model"], record["encoder"]) == ("unet", "resnet18"), record


@pytest.mark.slow
def test_grid_sweep(tmp_path):
    """README/docs/tracking.md: a grid sweep; the sweep folder gets summary.csv (the leaderboard
    columns plus the overrides each job varied), summary.md and pareto.png."""
    run_doc("rtseg-train -m data=synthetic model=baseline,unet,fastscnn", tmp_path, timeout=1800)
    (sweep,) = (tmp_path / "logs/train/multiruns").iterdir()
    for name in ("summary.csv", "summary.md", "pareto.png"):
        assert (sweep / name).is_file(), f"{sweep}: no {name}"
    table = rows(sweep / "summary.csv")
    assert sorted(r["model"] for r in table) == ["baseline", "fastscnn", "unet"], table
    assert set(LEADERBOARD_COLUMNS) <= set(table[0]), sorted(table[0])


@pytest.mark.slow
def test_benchmark_quick(tmp_path):
    """make benchmark-quick: the baseline at 64x64, eager and ONNX Runtime."""
    run_doc("make benchmark-quick", tmp_path)
    bench = the_run(tmp_path / "logs", "bench")
    table = rows(bench / "results.csv")
    assert {r["backend"] for r in table} == {"eager", "onnxruntime"}, table


@pytest.mark.slow
def test_export_camvid(tmp_path):
    """README: the shipped model exported to ONNX with its sidecar."""
    run_doc("rtseg-export checkpoint=camvid format=onnx out_dir=exports", tmp_path)
    assert (tmp_path / "exports/camvid.onnx").is_file()
    sidecar = json.loads((tmp_path / "exports/camvid.json").read_text())
    assert len(sidecar["class_names"]) == 11, sorted(sidecar)


@pytest.mark.slow
@pytest.mark.skipif(not CLIP.is_file(), reason=f"no dash-cam clip at {CLIP}")
def test_readme_picture(tmp_path):
    """The README picture's command, from a folder beside ../shared as the repo is: 3 frames."""
    cwd = tmp_path / "repo"
    cwd.mkdir()
    (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    cmd = next(c for c in RUNS if c.startswith("rtseg-realtime checkpoint=camvid"))
    run_doc(cmd, cwd)
    assert sorted(p.name for p in (cwd / "frames").iterdir()) == [
        "000000.jpg",
        "000001.jpg",
        "000002.jpg",
    ]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-m", "slow or not slow", "-q"]))
