"""W&B helpers: offline by default, sweep jobs grouped, config logged flat, one run per job."""

from __future__ import annotations

import logging
import os
import socket
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
