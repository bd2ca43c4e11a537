"""A multirun with logger=wandb leaves one offline W&B run per job, grouped, with flat config and summary."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from rtseg.tracking.wandb import flat_config

from .wandb_offline import offline_runs, read_offline_run


def test_multirun_jobs_are_separate_runs_in_one_group(wandb_sweep):
    runs = offline_runs(wandb_sweep)
    jobs = sorted(p.name for p in wandb_sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == ["0", "1"]
    assert len(runs) == 2, [str(r.path) for r in runs]
    # each job's run sits in its own folder: the second job did not reuse the first job's run
    assert {r.path.parents[2].name for r in runs} == {"0", "1"}
    assert len({r.run_id for r in runs}) == 2
    assert {r.group for r in runs} == {wandb_sweep.name}
    assert {r.job_type for r in runs} == {"train"}
    assert [r.name for r in runs] == [f"{wandb_sweep.name}/0", f"{wandb_sweep.name}/1"]


def test_config_is_flat_and_differs_per_job(wandb_sweep):
    runs = offline_runs(wandb_sweep)
    for r in runs:
        assert r.config["data.name"] == "synthetic"
        assert r.config["trainer.max_epochs"] == 1
        assert r.config["data.input_size"] == [64, 80]
    targets = [r.config["model._target_"] for r in runs]
    widths = [r.config.get("model.width") for r in runs]
    assert len(set(zip(targets, widths, strict=True))) == 2, (
        "both jobs logged the same model config"
    )


def test_summary_holds_accuracy_and_speed(wandb_sweep):
    for r in offline_runs(wandb_sweep):
        s = r.summary
        assert 0.0 <= s["val/miou_best"] <= 1.0
        assert s["val/miou_best"] >= s["val/miou"] - 1e-6
        assert 0.0 <= s["test/miou"] <= 1.0
        assert s["model/params"] > 0 and s["model/gflops"] > 0
        assert s["model/latency_ms"] > 0
        assert s["model/fps"] == pytest.approx(1000.0 / s["model/latency_ms"], rel=1e-6)


def test_summary_matches_the_run_record(wandb_sweep):
    from rtseg.tracking.runs import find_runs

    records = {r.run_dir.rsplit("/", 1)[-1]: r for r in find_runs(wandb_sweep)}
    for run in offline_runs(wandb_sweep):
        rec = records[run.path.parents[2].name]
        assert run.summary["val/miou_best"] == pytest.approx(rec.val_miou_best, abs=1e-6)
        assert run.summary["model/params"] == rec.params


def test_flat_config_flattens_and_drops_hydra():
    cfg = OmegaConf.create({"a": {"b": 1, "c": [1, 2]}, "hydra": {"x": 1}, "d": [{"e": 1}]})
    assert flat_config(cfg) == {"a.b": 1, "a.c": [1, 2], "d": "[{'e': 1}]"}


def test_read_offline_run_rejects_other_files(tmp_path):
    bad = tmp_path / "run-x.wandb"
    bad.write_bytes(b"not a wandb file")
    with pytest.raises(ValueError, match="not a W&B run file"):
        read_offline_run(bad)


def test_server_unreachable_answers_quickly_offline(monkeypatch):
    import socket

    from rtseg.tracking.wandb import server_unreachable

    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:1")  # nothing listens on port 1
    assert "127.0.0.1:1" in server_unreachable(timeout_s=1.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert server_unreachable(timeout_s=1.0) is None
