"""The Optuna sweep runs through `-m` on Python 3.11 and maximises what train.py returns."""

from __future__ import annotations

import pytest
import yaml

from rtseg.tracking.runs import find_runs

from .conftest import BIN, TINY_CLI, run_cli


@pytest.mark.slow
def test_optuna_sweep_maximises_val_miou_best(tmp_path):
    sweep = tmp_path / "optuna"
    args = [
        str(BIN / "rtseg-train"),
        "-m",
        "hparams_search=synthetic_optuna",
        "hydra.sweeper.n_trials=3",
        "data=synthetic",
        "model=baseline",
        "model.width=8",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={sweep}",
        *[o for o in TINY_CLI if not o.startswith("data.input_size")],
    ]
    run_cli(args, timeout=600)
    records = find_runs(sweep)
    assert len(records) == 3 and all(r.status == "finished" for r in records)
    # the sampler really varied the searched knobs, including the input size
    assert len({tuple(r.overrides) for r in records}) == 3
    assert all(any(o.startswith("module.optimizer.lr=") for o in r.overrides) for r in records)
    assert {tuple(r.input_size) for r in records} <= {(96, 128), (128, 160), (160, 192)}
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_value"] == pytest.approx(max(r.val_miou_best for r in records), abs=1e-6)
    assert set(result["best_params"]) == {
        "module.optimizer.lr",
        "module.optimizer.weight_decay",
        "module.loss.dice_weight",
        "data.input_size",
    }
    assert (sweep / "summary.md").read_text().count("| finished |") == 3
