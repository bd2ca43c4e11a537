"""rtseg-bench as users and reviewers run it: Hydra config, results files, multirun summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from rtseg.bench.cli import run_benchmark
from rtseg.bench.report import summarize_bench_sweep
from rtseg.errors import RtsegError
from rtseg.utils.config import compose_config as compose_cfg

from ..support import run_cli

REQUIRED = [
    "model", "input_size", "backend", "precision", "batch", "threads", "latency_ms_median", "latency_ms_p90",
    "fps", "throughput", "e2e_latency_ms_median", "e2e_fps", "peak_mem_mb", "params", "gflops",
    "achieved_gflops", "pct_of_peak", "agreement", "agrees", "miou", "note",
]  # fmt: skip
QUICK = [
    "measure.warmup=1",
    "measure.min_runs=3",
    "measure.min_seconds=0.05",
    "peak.n=256",
    "peak.min_seconds=0.05",
    "calibration.images=2",
    "agreement.images=2",
    "threads=[1]",
]


def _bench(out: Path, *overrides: str):
    cfg = compose_cfg(
        "benchmark", [f"paths.output_dir={out}", f"paths.log_dir={out}/logs", *QUICK, *overrides]
    )
    try:
        return run_benchmark(cfg)
    finally:
        GlobalHydra.instance().clear()


def test_config_benchmark_writes_table_csv_json_and_plot(tmp_path, capsys):
    rows = _bench(
        tmp_path,
        "model=baseline",
        "model.width=8",
        "input_size=[32,32]",
        "backends=[eager,onnxruntime,auto]",
        "auto.candidates=[eager,onnxruntime]",
    )
    df = pd.read_csv(tmp_path / "results.csv")
    assert set(REQUIRED) <= set(df.columns)
    assert list(df["backend"]).count("auto") == 1 and len(df) == 3
    auto = df[df["backend"] == "auto"].iloc[0]
    assert auto["resolved"] in ("eager", "onnxruntime") and auto["agrees"]
    assert (df["fps"] > 0).all() and (df["pct_of_peak"] > 0).all()
    assert (tmp_path / "results.json").is_file() and (tmp_path / "fps.png").is_file()
    assert (
        tmp_path / "logs" / "bench" / "auto.json"
    ).is_file()  # the per-machine choice for rtseg-realtime
    out = capsys.readouterr().out
    assert "| model | input | backend |" in out and "ISA: " in out and "GEMM peak" in out
    assert len(rows) == 3


def test_checkpoint_benchmark_reports_its_val_miou_and_peers(tmp_path, tiny_checkpoint, capsys):
    _bench(
        tmp_path,
        f"checkpoint={tiny_checkpoint}",
        "input_size=[32,32]",
        "backends=[eager]",
        "peers=true",
        "eval_miou=true",
        "eval_images=2",
        "e2e=false",
    )
    df = pd.read_csv(tmp_path / "results.csv")
    ours = df[~df["model"].str.startswith("peer:")]
    assert ours["miou"].notna().all() and 0 <= ours["miou"].iloc[0] <= 1
    assert ours["miou_drop"].iloc[0] == pytest.approx(0.0)  # eager against itself
    peers = df[df["model"].str.startswith("peer:")]
    assert sorted(peers["backend"]) == ["eager", "onnxruntime-default"]
    assert "x torchvision LRASPP-MobileNetV3-L eager" in capsys.readouterr().out
    assert (tmp_path / "miou_vs_fps.png").is_file()


def test_a_checkpoint_is_timed_at_the_size_it_was_trained_at_unless_told(tmp_path, tiny_ckpt):
    """tiny_ckpt records 32x48: timed there (a model for 450x600 frames at 450x600), not at a
    default; model= with random weights at CamVid's 360x480; input_size= wins over both."""
    common = ["backends=[eager]", "e2e=false", "plots=false", "peers=false"]
    _bench(tmp_path / "own", f"checkpoint={tiny_ckpt}", *common)
    assert list(pd.read_csv(tmp_path / "own" / "results.csv")["input_size"]) == ["32x48"]
    _bench(tmp_path / "told", f"checkpoint={tiny_ckpt}", "input_size=[16,16]", *common)
    assert list(pd.read_csv(tmp_path / "told" / "results.csv")["input_size"]) == ["16x16"]
    _bench(tmp_path / "random", "model=baseline", "model.width=4", *common)
    assert list(pd.read_csv(tmp_path / "random" / "results.csv")["input_size"]) == ["360x480"]


def test_a_shipped_model_without_its_data_benches_int8_from_its_card(tmp_path):
    """data=synthetic (the default) is not camvid's data: int8 comes from the card's ranges, as in
    realtime and the API, instead of a skipped row."""
    # at the size the card was measured at (its ranges name the graph's tensors at that size)
    _bench(tmp_path, "checkpoint=camvid", "backends=[onnxruntime-int8]", "e2e=false",
           "plots=false", "peers=false")  # fmt: skip
    row = pd.read_csv(tmp_path / "results.csv").iloc[0]
    assert row["backend"] == "onnxruntime-int8" and row["fps"] > 0
    assert "model card" in row["note"]


def test_multirun_summary_concatenates_jobs(tmp_path):
    for i, backend in enumerate(["eager", "onnxruntime"]):
        _bench(
            tmp_path / str(i),
            "model=baseline",
            "name=baseline",
            "model.width=8",
            "input_size=[32,32]",
            f"backends=[{backend}]",
            "plots=false",
            "e2e=false",
        )
    summary = summarize_bench_sweep(tmp_path)
    df = pd.read_csv(summary)
    assert sorted(df["backend"]) == ["eager", "onnxruntime"]
    assert df.columns[0] == "job"  # docs/tracking.md: stacked with a job column
    assert dict(zip(df["backend"], df["job"].astype(str), strict=True)) == {
        "eager": "0",
        "onnxruntime": "1",
    }
    text = (tmp_path / "summary.md").read_text()
    assert "| baseline |" in text and text.startswith("CPU: ")  # the machine header survives
    # and `-m` runs it, in place of the training summary: one summary.md per sweep
    cfg = compose_cfg("benchmark", [], hydra=True)
    assert list(cfg.hydra.callbacks) == ["sweep_summary", "redact_secrets"]
    assert cfg.hydra.callbacks.sweep_summary._target_ == "rtseg.bench.report.SummaryCallback"


def test_bad_input_size_is_a_user_error(tmp_path):
    with pytest.raises(RtsegError, match=r"^input_size must be \[H, W\], got \[32\]$"):
        _bench(tmp_path, "input_size=[32]")


def test_model_that_cannot_run_at_the_size_is_a_user_error(tmp_path):
    # a network built for 4-channel input cannot take the benchmark's RGB batch
    with pytest.raises(RtsegError, match="cannot run at 16x16: RuntimeError"):
        _bench(
            tmp_path,
            "model=baseline",
            "+model.in_channels=4",
            "input_size=[16,16]",
            "backends=[eager]",
        )


def test_acceptance_command(tmp_path):
    """The reviewers' command (with shorter timing knobs), run as a process."""
    cmd = ["rtseg-bench", "model=baseline", "input_size=[64,64]", "backends=[eager,onnxruntime]"]
    cmd += [f"hydra.run.dir={tmp_path / 'run'}", *QUICK]
    proc = run_cli(cmd, timeout=180, RTSEG_LOG_DIR=str(tmp_path / "logs"))
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(REQUIRED) <= set(df.columns)
    assert sorted(df["backend"]) == ["eager", "onnxruntime"] and df["gflops"].gt(0).all()
    assert "| baseline | 64x64 |" in proc.stdout


@pytest.mark.slow
def test_multirun_writes_summary(tmp_path):
    cmd = ["rtseg-bench", "-m", "model=baseline", "input_size=[32,32]"]
    cmd += ["backends=[eager],[onnxruntime]", f"hydra.sweep.dir={tmp_path / 'sweep'}", *QUICK]
    run_cli(cmd, timeout=300, RTSEG_LOG_DIR=str(tmp_path / "logs"))
    df = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert sorted(df["backend"]) == ["eager", "onnxruntime"]
    assert df.columns[0] == "job"  # docs/tracking.md: stacked with a job column
    assert dict(zip(df["backend"], df["job"].astype(str), strict=True)) == {
        "eager": "0",
        "onnxruntime": "1",
    }
    assert (tmp_path / "sweep" / "summary.md").is_file()


PRESETS = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "bench").glob("*.yaml")
)
MODELS = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "model").glob("*.yaml")
)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_compose(preset):
    cfg = compose_cfg("benchmark", [f"bench={preset}"])
    assert cfg.name and cfg.model._target_


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_is_benchmarkable(model, tmp_path):
    """Eager rows for every conf/model config at a small size (ONNX export: the slow test below)."""
    from hydra.utils import instantiate

    from rtseg.bench.benchmark import Inputs, Knobs, Plan, Subject, benchmark_network
    from rtseg.infer.quality import Evidence

    cfg = compose_cfg("benchmark", [f"model={model}"])
    net = instantiate(cfg.model)
    knobs = Knobs(warmup=0, min_runs=1, min_seconds=0.0, e2e=False, memory=False)
    inputs = Inputs(Evidence(images=[torch.randn(1, 3, 128, 128)]))
    plan = Plan(["eager"], knobs=knobs, workdir=tmp_path)
    (row,) = benchmark_network(Subject(model, net, (128, 128)), inputs, plan)
    assert row["fps"] > 0 and row["gflops"] > 0 and row["agreement"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_exports_to_onnx(model, tmp_path):
    from hydra.utils import instantiate

    from rtseg.infer.auto import agreement, reference_labels
    from rtseg.infer.registry import create_backend

    cfg = compose_cfg("benchmark", [f"model={model}"])
    net = instantiate(cfg.model).eval()
    backend = create_backend("onnxruntime", net, (128, 128), threads=1, workdir=tmp_path)
    assert agreement(backend, reference_labels(net), [torch.randn(1, 3, 128, 128)]) > 0.99


def test_wandb_logger_writes_an_offline_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    _bench(
        tmp_path,
        "model=baseline",
        "model.width=8",
        "input_size=[32,32]",
        "backends=[eager]",
        "logger=wandb",
        "e2e=false",
    )
    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    import wandb

    assert wandb.run is None  # finished, so the next multirun job starts its own run


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA rows are skipped")
def test_exits_with_an_error_when_no_row_could_be_measured(tmp_path):
    with pytest.raises(RtsegError, match="no backend could be measured"):
        _bench(tmp_path, "model=baseline", "input_size=[32,32]", "backends=[cuda]", "peers=false")


def test_tta_rows_show_their_cost_next_to_the_plain_ones(tmp_path):
    rows = _bench(
        tmp_path, "model=baseline", "model.width=8", "input_size=[32,32]",
        "backends=[eager,onnxruntime]", "tta=[none,flip,ms]", "e2e=false",
    )  # fmt: skip
    by = {(r["backend"], r["tta"]): r for r in rows}
    assert by[("eager", "flip")]["latency_ms_median"] > 0 and by[("eager", None)]["agrees"]
    assert by[("onnxruntime", "flip")]["latency_ms_median"] > 0
    assert by[("eager", "scales 0.75/1/1.25/1.5")]["latency_ms_median"] > 0
    assert "scales need a backend" in by[("onnxruntime", "scales 0.75/1/1.25/1.5")]["note"]
    assert "| flip |" in (tmp_path / "results.md").read_text()
