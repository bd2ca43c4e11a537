"""rtseg-bench: latency/fps of a model (config or checkpoint) across backends, batch sizes and threads.

rtseg-bench model=lraspp input_size=[360,480] backends=[eager,onnxruntime,openvino,auto]
rtseg-bench checkpoint=logs/train/runs/<run> data=camvid eval_miou=true   # its best-*.ckpt
rtseg-bench -m model=baseline,lraspp,fastscnn input_size=[360,480]   # + summary.csv at the end
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rtseg.bench.benchmark import (
    PEER_BACKENDS,
    PEER_MODEL,
    Inputs,
    Knobs,
    Plan,
    Subject,
    benchmark_network,
    peer_network,
    speedups,
)
from rtseg.bench.peak import measure_peaks
from rtseg.bench.report import (
    header_text,
    machine_header,
    plot_results,
    results_markdown,
    sort_rows,
    write_results,
)
from rtseg.checkpoints.spec import checkpoint_given
from rtseg.errors import DataError, RtsegError
from rtseg.infer.open import card_int8, input_size, load_model
from rtseg.infer.options import InferOptions
from rtseg.infer.quality import Evidence
from rtseg.infer.registry import check_backend_names
from rtseg.models.tta import TTA
from rtseg.utils.cli import command_line_checked, user_errors_as_one_line
from rtseg.utils.config import hydra_context, instantiate_all, output_dir
from rtseg.utils.paths import CONF_DIR, atomic_path

log = logging.getLogger("rtseg.bench")
# the size a network with random weights (model=...) is timed at when input_size is null: CamVid's,
# the real-time papers' setting; a checkpoint is timed at the size it was trained at
UNTRAINED_SIZE = (360, 480)


def load_subject(cfg: DictConfig) -> tuple[Subject, dict]:
    """What to benchmark and its metadata (mean/std, val mIoU, classes): a ``checkpoint=`` spec
    through ``infer.open`` (the same resolution as realtime and the API), else ``model=`` with
    random weights."""
    if checkpoint_given(cfg.get("checkpoint")):
        loaded = load_model(cfg.checkpoint, cfg.paths.log_dir)
        meta, path = loaded.meta, loaded.choice.path
        size = input_size(loaded, cfg.input_size)
        if loaded.exported is not None:
            name = cfg.get("name") or path.name
        else:
            run = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
            name = cfg.get("name") or f"{str(meta.get('model')).split(' ')[0]}:{run}"
        subject = Subject(
            name, loaded.net, size, meta.get("val_miou"), meta.get("num_classes"), loaded.exported
        )
        return subject, meta
    # the same random weights in every run: auto's cache key stays stable
    torch.manual_seed(int(cfg.seed))
    net = instantiate(cfg.model)
    mean, std = getattr(net, "input_normalization", None) or (
        list(cfg.data.mean),
        list(cfg.data.std),
    )
    choices = hydra_context()["choices"]
    name = cfg.get("name")
    if not name:
        name = choices.get("model") or str(cfg.model._target_).rsplit(".", 1)[-1]
        if cfg.model.get("encoder_name"):
            name += f"-{cfg.model.encoder_name}"
    meta = {
        "mean": list(mean),
        "std": list(std),
        "val_miou": None,
        "num_classes": int(cfg.model.num_classes),
        "dataset": cfg.data.name,
    }
    size = tuple(int(v) for v in (cfg.input_size or UNTRAINED_SIZE))
    return Subject(name, net.eval(), size, None, meta["num_classes"]), meta


def sample_inputs(cfg: DictConfig, meta: dict, input_size, options: InferOptions) -> Inputs:
    """Agreement / calibration / mIoU images from the configured data, resized to the input size.

    Agreement falls back to random input (noted in the table) when the data cannot be read or
    does not match the checkpoint's dataset; calibration never does (int8 rows are then skipped).
    A trained network's reduced precisions are judged on the val mIoU drop over
    ``reduced_precision.eval_images`` labelled images; an untrained one (model=..., random
    weights) on agreement only.
    """
    from rtseg.infer.calibration import DatasetImages

    data = DatasetImages(cfg.data, meta)
    if data.unavailable:
        int8 = "int8 from the model card" if meta.get("int8_evidence") else "int8 rows are skipped"
        log.warning("%s: agreement uses random input, %s", data.unavailable, int8)
    g = torch.Generator().manual_seed(0)
    agree = data.pairs(cfg.agreement.split, int(cfg.agreement.images), input_size)
    evidence = Evidence(
        images=[x for x, _ in agree]
        or [torch.randn(1, 3, *input_size, generator=g) for _ in range(int(cfg.agreement.images))],
        calibration=data.calibration(
            options.calibration_split, options.calibration_images, input_size
        ),
        ignore_index=int(meta.get("ignore_index") or 255),
    )
    if meta.get("checkpoint") or meta.get("source_checkpoint"):
        evidence.pairs = data.pairs(cfg.agreement.split, options.eval_images, input_size)
    if meta.get("int8_evidence") and not evidence.pairs:
        # a shipped model without its data here: int8 as realtime and the API run it, from the
        # card's ranges, judged by the card and re-checked here (infer.open.card_int8)
        evidence.calibration, evidence.recheck = card_int8(meta, tuple(input_size))
        evidence.card = meta["int8_evidence"]
        evidence.num_classes = meta.get("num_classes")
        log.info("int8: %s", evidence.calibration.source)
    inputs = Inputs(evidence, mean=meta["mean"], std=meta["std"])
    inputs.source = cfg.data.name if agree else "random"
    if cfg.get("eval_miou"):
        inputs.eval_pairs = data.pairs(cfg.agreement.split, int(cfg.eval_images), input_size)
        if not inputs.eval_pairs:
            raise DataError(
                f"eval_miou=true needs readable {cfg.data.name}/{cfg.agreement.split} data"
            )
    return inputs


def run_benchmark(cfg: DictConfig) -> list[dict]:
    from rich.console import Console

    console = Console(stderr=True)
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "config.yaml") as tmp:
        OmegaConf.save(cfg, tmp, resolve=False)
    threads = [int(t) if t else None for t in cfg.threads]
    if cfg.input_size is not None and len(cfg.input_size) != 2:
        raise RtsegError(f"input_size must be [H, W], got {list(cfg.input_size)}")

    check_backend_names(cfg.backends, "backends")
    check_backend_names(cfg.auto.candidates or [], "auto.candidates")
    # the model first: a bad checkpoint fails in one line before the slow peak measurement
    subject, meta = load_subject(cfg)
    peaks = {}
    if cfg.peak.enabled:
        with console.status("measuring this machine's GEMM peak"):
            peaks = measure_peaks(
                tuple(cfg.peak.precisions), int(cfg.peak.n), threads[0], float(cfg.peak.min_seconds)
            )
    header = machine_header(threads, peaks)

    options = InferOptions.from_cfg(cfg)
    inputs = sample_inputs(cfg, meta, subject.input_size, options)
    knobs = Knobs(
        warmup=int(cfg.measure.warmup), min_runs=int(cfg.measure.min_runs),
        min_seconds=float(cfg.measure.min_seconds), e2e=bool(cfg.e2e), memory=bool(cfg.measure.memory),
    )  # fmt: skip
    plan = Plan(
        backends=list(cfg.backends),
        batch_sizes=list(cfg.batch_sizes),
        threads=threads,
        knobs=knobs,
        options=options,
        peaks=peaks,
        frame_size=cfg.get("frame_size"),
        workdir=Path(cfg.workdir) if cfg.get("workdir") else out / "export",
        tta=[TTA.parse(t) for t in (cfg.get("tta") or [None])],
    )
    with console.status("benchmarking") as status:
        progress = lambda msg: status.update(f"benchmarking {msg}")  # noqa: E731
        rows = benchmark_network(subject, inputs, plan, progress)
        if cfg.get("peers"):
            size = subject.input_size
            peer = Subject(PEER_MODEL, peer_network(int(meta.get("num_classes") or 21)), size)
            rows += benchmark_network(peer, inputs, replace(plan, backends=PEER_BACKENDS), progress)

    rows = sort_rows(rows)
    lines = speedups(rows) if cfg.get("peers") else []
    extra = {"inputs": inputs.source, "speedups": lines, "overrides": hydra_context()["overrides"]}
    paths = write_results(rows, out, header, extra)
    if cfg.get("plots"):
        import pandas as pd

        try:
            plot_results(pd.read_csv(paths["csv"]), out)
        except Exception as e:  # noqa: BLE001 - a plot must never lose the table
            log.warning("plots failed: %s", e)
    print(header_text(header))
    print(f"agreement inputs: {inputs.source}; tolerance {options.agreement_tol:.3f} ((!) = below)")
    if inputs.eval_pairs:
        print(
            f"measured mIoU: {len(inputs.eval_pairs)} images of {cfg.data.name}/{cfg.agreement.split}"
            f" at {cfg.data.get('root') or 'built-in data'} (recorded mIoU: the checkpoint's own val)"
        )
    print()
    print(results_markdown(rows), end="")
    for ln in lines:
        print(f"- {ln}")
    print(f"\nresults: {paths['csv']}")
    _log_wandb(cfg, rows, out)
    if rows and not any(r.get("latency_ms_median") not in (None, "") for r in rows):
        raise RtsegError(
            f"no backend could be measured ({len(rows)} rows, all skipped; reasons in {paths['csv']})"
        )
    return rows


def _log_wandb(cfg: DictConfig, rows: list[dict], out: Path) -> None:
    """With logger=wandb: the table and plots as one offline W&B run per job."""
    loggers = instantiate_all(cfg.get("logger"))
    if not loggers:
        return
    from lightning.pytorch.loggers import WandbLogger

    from rtseg.tracking.wandb import finish_wandb, flat_config, prepare_wandb_logger

    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    try:
        for lg in wandb_loggers:
            import pandas as pd

            prepare_wandb_logger(lg, hydra_context()["sweep_dir"], cfg)
            lg.log_hyperparams(flat_config(cfg))
            lg.log_table("bench/results", dataframe=pd.DataFrame(rows).astype(str))
            for png in sorted(out.glob("*.png")):
                lg.log_image(f"bench/{png.stem}", [str(png)])
    finally:
        finish_wandb(wandb_loggers)


@command_line_checked
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="benchmark")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    run_benchmark(cfg)


if __name__ == "__main__":
    main()
