"""Which trained model to use: ``best`` (highest recorded val mIoU), a .ckpt, a run folder, an exported
file, or the name of a model shipped with the package (``rtseg.checkpoints.zoo``).

Reads past runs only through ``rtseg.tracking.runs`` and says why it chose what it chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtseg.errors import CheckpointError
from rtseg.tracking.runs import RECORD_NAME, MixedDatasets, RunRecord, best_run, find_runs

EXPORTED_SUFFIXES = (".onnx", ".xml")


@dataclass
class Choice:
    path: Path
    reason: str
    exported: bool = (
        False  # an .onnx/.xml file from rtseg-export rather than a Lightning checkpoint
    )


def checkpoint_spec(cfg_checkpoint) -> dict:
    """``checkpoint=PATH`` (a string) or ``checkpoint.{path,dataset,experiment,tag,model,fallback}``."""
    if cfg_checkpoint is None:
        return {"path": "best"}
    if isinstance(cfg_checkpoint, str | Path):
        return {"path": str(cfg_checkpoint)}
    spec = {k: v for k, v in dict(cfg_checkpoint).items() if v is not None}
    spec.setdefault("path", "best")
    return spec


def checkpoint_given(cfg_checkpoint) -> bool:
    """Whether a config names a checkpoint at all (rtseg-bench: else the network is ``model=``):
    ``checkpoint=PATH`` or any ``checkpoint.*`` key but ``fallback`` set."""
    if cfg_checkpoint is None or isinstance(cfg_checkpoint, str | Path):
        return bool(cfg_checkpoint)
    return any(v is not None for k, v in dict(cfg_checkpoint).items() if k != "fallback")


def choose_checkpoint(cfg_checkpoint, log_dir: str | Path) -> Choice:
    spec = checkpoint_spec(cfg_checkpoint)
    path = str(spec["path"])
    from rtseg.checkpoints import zoo

    if path == "best":
        filters = {k: spec.get(k) for k in ("dataset", "experiment", "tag", "model")}
        fallback = spec.get("fallback")
        if fallback and not any(filters.values()) and not _has_trained_runs(log_dir):
            name = zoo.shipped_name(str(fallback))
            if name is None:
                raise CheckpointError(
                    f"checkpoint.fallback={fallback}: not a shipped model ({', '.join(zoo.names())})"
                )
            return Choice(
                Path(name),
                f"no trained run under {log_dir} yet: the shipped model {fallback!r} "
                "(checkpoint.fallback; train one, or pass checkpoint=...)",
            )
        return choose_best(log_dir, **filters)

    name = zoo.shipped_name(path)
    if name is not None:
        return Choice(Path(name), f"model {name!r} shipped with rtseg (rtseg.checkpoints.zoo)")
    p = Path(path).expanduser()
    if str(p) in zoo.names():  # ./camvid: kept a path (Path() drops the ./ that made it one)
        p = p.absolute()
    if p.is_dir():
        return from_run_dir(p)
    if not p.exists():
        raise CheckpointError(
            f"checkpoint not found: {p} (expected best, a .ckpt, a run folder, an exported .onnx/.xml "
            f"or a shipped model name: {', '.join(zoo.names()) or 'none shipped'})"
        )
    if p.suffix.lower() in EXPORTED_SUFFIXES:
        return Choice(p, "exported model given on the command line", exported=True)
    return Choice(p, "checkpoint given on the command line")


def _has_trained_runs(log_dir: str | Path) -> bool:
    return any(r.best_ckpt and Path(r.best_ckpt).is_file() for r in find_runs(log_dir))


def choose_best(
    log_dir: str | Path,
    dataset: str | None = None,
    experiment: str | None = None,
    tag: str | None = None,
    model: str | None = None,
) -> Choice:
    unreadable: list[Path] = []
    records = find_runs(log_dir, unreadable=unreadable)
    try:
        best = best_run(records, dataset=dataset, experiment=experiment, tag=tag, model=model)
    except MixedDatasets as e:
        listing = "; ".join(
            f"{r.dataset}{f' ({r.num_classes} classes)' if r.num_classes else ''}: "
            f"{100 * r.val_miou_best:.2f} in {r.run_dir}"
            for r in e.best.values()
        )
        datasets = sorted({r.dataset for r in e.best.values() if r.dataset})
        how = (
            f"checkpoint.dataset={datasets[0]}"
            if len(datasets) == len(e.best)
            else "checkpoint.experiment=... or checkpoint=RUN_DIR"
        )
        raise CheckpointError(
            f"checkpoint=best: runs under {log_dir} are on different datasets or class sets, whose "
            f"mIoU cannot be compared ({listing}): pick one with {how}"
        ) from None
    filters = ", ".join(
        f"{k}={v}"
        for k, v in dict(dataset=dataset, experiment=experiment, tag=tag, model=model).items()
        if v
    )
    if best is None:
        where = f"{Path(log_dir)}" + (f" matching {filters}" if filters else "")
        broken = (
            f", {len(unreadable)} unreadable: {', '.join(map(str, unreadable[:3]))}"
            if unreadable
            else ""
        )
        raise CheckpointError(
            f"no trained run with a checkpoint under {where} ({len(records)} run records found"
            f"{broken}): "
            "train one first, e.g. `rtseg-train` (built-in synthetic data) or `rtseg-train experiment=camvid_ppliteseg_lite0 data.root=/path/to/camvid`, "
            "or pass checkpoint=PATH.ckpt"
        )
    usable = [
        r
        for r in records
        if r.val_miou_best is not None and r.best_ckpt and Path(r.best_ckpt).is_file()
    ]
    reason = (
        f"best val mIoU {100 * best.val_miou_best:.2f} among {len(usable)} usable runs under {log_dir}"
        + (f" ({filters})" if filters else "")
        + f": run {best.run_dir} ({best.model} on {best.dataset})"
    )
    return Choice(Path(best.best_ckpt), reason)


def from_run_dir(run_dir: Path) -> Choice:
    from rtseg.checkpoints import zoo

    record_path = run_dir / RECORD_NAME
    if not record_path.is_file():
        ckpts = sorted(run_dir.glob("*.ckpt"))[:1]
        hint = f" (pass a file: checkpoint={ckpts[0]})" if ckpts else ""
        if run_dir.name in zoo.names():
            hint += f" (the shipped model is {zoo.PREFIX}{run_dir.name})"
        raise CheckpointError(
            f"checkpoint={run_dir} is a folder, not a checkpoint file or a run folder (no {RECORD_NAME}): "
            f"pass a .ckpt file, a run folder or best{hint}"
        )
    rec = RunRecord.load(record_path)
    for label, ckpt in (("best", rec.best_ckpt), ("last", rec.last_ckpt)):
        if ckpt and Path(ckpt).is_file():
            miou = (
                f", val mIoU {100 * rec.val_miou_best:.2f}" if rec.val_miou_best is not None else ""
            )
            return Choice(
                Path(ckpt),
                f"{label} checkpoint of run {run_dir} ({rec.model} on {rec.dataset}{miou})",
            )
    raise CheckpointError(f"run {run_dir} has no checkpoint on disk (best_ckpt={rec.best_ckpt})")
