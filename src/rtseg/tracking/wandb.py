"""W&B helpers: offline by default, sweep jobs grouped, config logged flat, one run per job."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("rtseg.wandb")

DEFAULT_HOST = "https://api.wandb.ai"


def flat_config(cfg: DictConfig) -> dict:
    """``{"model.encoder_name": ..., "module.optimizer.lr": ...}`` so W&B can filter by any knob."""
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    out: dict = {}

    def walk(prefix: str, node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("hydra",):
                    continue
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(node, list) and all(not isinstance(v, (dict, list)) for v in node):
            out[prefix] = str(node) if len(node) > 8 else node
        elif isinstance(node, list):
            out[prefix] = str(node)
        else:
            out[prefix] = node

    walk("", container)
    return out


def prepare_wandb_logger(logger, sweep_dir: str | None, cfg: DictConfig) -> None:
    """Put sweep jobs in one W&B group (named after the sweep folder) before the run starts."""
    from lightning.pytorch.loggers import WandbLogger

    if not isinstance(logger, WandbLogger):
        return
    fall_back_offline_if_unreachable(logger)
    if logger._wandb_init.get("group") is None and sweep_dir:
        logger._wandb_init["group"] = Path(sweep_dir).name
    # the experiment preset's name is a tag too, so W&B can filter "all runs of experiment X"
    experiment = cfg.get("experiment_name")
    tags = list(logger._wandb_init.get("tags") or [])
    if experiment and experiment not in tags:
        logger._wandb_init["tags"] = [*tags, str(experiment)]
    # name runs after their folder ("<sweep>/<job>" or the run stamp) so W&B rows lead back to disk
    if logger._wandb_init.get("name") is None:
        try:
            run_dir = Path(str(cfg.paths.output_dir))
        except Exception:  # noqa: BLE001 - no Hydra context and no paths.output_dir: keep W&B's name
            return
        logger._wandb_init["name"] = (
            f"{Path(sweep_dir).name}/{run_dir.name}" if sweep_dir else run_dir.name
        )


def server_unreachable(timeout_s: float = 3.0) -> str | None:
    """Why the W&B server (``WANDB_BASE_URL`` or api.wandb.ai) cannot be reached, None if it can.

    wandb.init itself waits ~90 s before failing with a traceback and no run; a TCP connect with a
    short timeout answers in seconds.
    """
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("WANDB_BASE_URL") or DEFAULT_HOST)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        return f"{host}:{port}: {e.strerror or type(e).__name__}"
    return None


def fall_back_offline_if_unreachable(logger) -> None:
    """``WANDB_MODE=online`` with no reachable server: log offline (one warning), not a traceback."""
    mode = logger._wandb_init.get("mode") or os.environ.get("WANDB_MODE") or "online"
    if mode not in ("online", "run"):
        return  # offline / dryrun / disabled: nothing to reach, no delay
    reason = server_unreachable()
    if reason is not None:
        log.warning(
            "W&B server not reachable (%s): logging offline instead; upload later with `wandb sync`",
            reason,
        )
        logger._wandb_init["mode"] = "offline"


def finish_wandb(loggers) -> None:
    """Lightning never calls ``wandb.finish``: without it the next multirun job reuses this run."""
    from lightning.pytorch.loggers import WandbLogger

    if any(isinstance(lg, WandbLogger) for lg in loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()


# --- reading offline runs back (tests, sanity checks before `wandb sync`) ----------------------

_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of checksummed chunks
_HEADER = 7  # ":W&B" + magic (2 bytes) + version (1 byte); each chunk header: crc32, length, type


@dataclass
class OfflineRun:
    """What an offline run file holds: enough to check grouping, config and summary without W&B."""

    path: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def _chunks(data: bytes):
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # block trailer too short for a header: padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0:
            break
        if kind == 1:  # full record
            yield chunk
        elif kind == 2:  # first
            pending = chunk
        elif kind == 3:  # middle
            pending += chunk
        elif kind == 4:  # last
            yield pending + chunk
            pending = b""


def read_offline_run(path: str | Path) -> OfflineRun:
    """Parse ``run-*.wandb`` (wandb >= 0.19 writes no config.yaml/summary json for offline runs)."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        path = next(path.glob("run-*.wandb"))
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    run = OfflineRun(path=path)

    def value(item):
        try:
            return json.loads(item.value_json)
        except ValueError:
            return item.value_json

    for chunk in _chunks(data):
        rec = pb.Record()
        rec.ParseFromString(chunk)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id, run.name, run.group, run.job_type = (
                r.run_id,
                r.display_name,
                r.run_group,
                r.job_type,
            )
            run.tags = list(r.tags)
            run.config.update({it.key: value(it) for it in r.config.update})
        elif kind == "config":
            run.config.update({it.key: value(it) for it in rec.config.update})
        elif kind == "summary":
            run.summary.update(
                {it.key or "/".join(it.nested_key): value(it) for it in rec.summary.update}
            )
    # config values arrive as {"value": v} (W&B's config format)
    run.config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in run.config.items()}
    return run


def offline_runs(root: str | Path) -> list[OfflineRun]:
    """Every offline W&B run under ``root`` (e.g. a sweep folder), in folder order."""
    return [read_offline_run(p) for p in sorted(Path(root).rglob("offline-run-*/run-*.wandb"))]
