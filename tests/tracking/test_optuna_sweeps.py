"""Optuna studies that persist (issue 35): resume after Ctrl-C, two workers on one storage,
pruning. Tiny synthetic trainings through the console script, one thread each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import BIN, TINY_CLI

optuna = pytest.importorskip("optuna")

pytestmark = pytest.mark.timeout(900)


def sweep_command(sweep: Path, n_trials: int, *extra: str) -> list[str]:
    return [
        str(BIN / "rtseg-train"),
        "-m",
        "hparams_search=synthetic_optuna",
        f"hydra.sweeper.n_trials={n_trials}",
        "model=baseline",
        "model.width=8",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={sweep}",
        *[o for o in TINY_CLI if not o.startswith("data.input_size")],
        # small searched sizes: every trial takes seconds
        "data.input_size=choice([48,64],[64,80])",
        *extra,
    ]


def env() -> dict:
    return {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "OMP_NUM_THREADS": "1",
    }


def study_of(sweep: Path):
    from rtseg.tracking.optuna_study import open_storage

    storage = open_storage(sweep / "optuna.journal")
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def finished(sweep: Path) -> list:
    if not (sweep / "optuna.journal").is_file():
        return []
    try:
        study = study_of(sweep)
    except ValueError:  # the study is not written yet
        return []
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def test_an_interrupted_study_resumes_with_the_same_command(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = sweep_command(sweep, 6)
    first = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while len(finished(sweep)) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    first.send_signal(signal.SIGINT)  # Ctrl-C during the fourth trial
    first.wait(timeout=120)
    before = {t.number: (t.params, t.value) for t in finished(sweep)}
    assert len(before) >= 3
    subprocess.run(cmd, env=env(), check=True, timeout=600, capture_output=True)
    study = study_of(sweep)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 6, [(t.number, t.state) for t in study.trials]
    assert len({t.number for t in done}) == 6
    after = {t.number: (t.params, t.value) for t in done}
    assert all(after[n] == before[n] for n in before), "finished trials changed"
    # the interrupted trial failed and its parameters ran again
    requeued = [t for t in done if "rtseg_requeued_from" in t.user_attrs]
    assert len(requeued) <= 1
    assert (sweep / "optimization_results.yaml").is_file()


def test_two_workers_on_one_study_run_distinct_trials(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = sweep_command(sweep, 4)
    workers = [
        subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for w in workers:
        assert w.wait(timeout=800) == 0, w.stderr.read().decode()[-2000:]
    study = study_of(sweep)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == 8 and len(set(numbers)) == 8
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    # one job folder per trial number, none shared
    assert len({p.name for p in sweep.iterdir() if p.name.isdigit()}) == 8


def trial_epochs(sweep: Path) -> tuple[int, int]:
    """(epochs trained over all trials, trials pruned), from the trials' reports."""
    study = study_of(sweep)
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    pruned = len(study.get_trials(states=(optuna.trial.TrialState.PRUNED,)))
    return epochs, pruned


def test_pruning_spends_fewer_trial_epochs(tmp_path):
    from rtseg.tracking.runs import find_runs

    counts = {}
    for pruner in ("none", "median"):
        sweep = tmp_path / pruner
        cmd = sweep_command(
            sweep,
            6,
            "trainer.max_epochs=4",
            f"hydra/sweeper/pruner={pruner}",
        )
        if pruner == "median":
            cmd += [
                "hydra.sweeper.pruner.n_startup_trials=2",
                "hydra.sweeper.pruner.n_warmup_steps=0",
            ]
        subprocess.run(cmd, env=env(), check=True, timeout=800, capture_output=True)
        counts[pruner] = trial_epochs(sweep)
    print(
        f"trial-epochs without pruning: {counts['none'][0]}, with the median pruner: "
        f"{counts['median'][0]} ({counts['median'][1]} of 6 trials pruned)",
        file=sys.stderr,
    )
    assert counts["none"] == (24, 0)
    assert counts["median"][1] >= 1 and counts["median"][0] < counts["none"][0]
    # the pruned trials say so in the sweep summary and the leaderboard
    states = [r.state for r in find_runs(tmp_path / "median")]
    assert states.count("pruned") == counts["median"][1]
    assert (tmp_path / "median" / "summary.md").read_text().count("| pruned |") == counts["median"][
        1
    ]
