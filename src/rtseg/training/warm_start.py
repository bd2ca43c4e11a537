"""Warm start: begin a training run from trained network weights (``init_weights=PATH|name``).

Fine-tuning, not resuming: the weights of a checkpoint or shipped model are copied into the
configured network, and the optimiser, schedule and epoch count start fresh. This is how a model
is adapted to a new input size or data without paying for its whole schedule again. Heads that
exist only in training (deep supervision) may be absent from the source, shipped models drop
them: those keep their fresh initialisation. Anything else must match name for name and shape for
shape, or the run stops with one line before it trains.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from rtseg.checkpoints import zoo
from rtseg.checkpoints.meta import describe_model, stored_model_config
from rtseg.checkpoints.reading import load_network
from rtseg.errors import CheckpointError
from rtseg.utils.paths import file_sha256

log = logging.getLogger(__name__)


def training_only(key: str) -> bool:
    """Deep-supervision heads (models/lite.py's ``aux``), which shipped weights leave out."""
    return key.startswith("aux.") or ".aux." in key


def warm_start(net: nn.Module, spec: str, model_cfg: dict) -> dict:
    """Copy the network weights of ``spec`` into ``net``; return what run.json records of it."""
    try:
        source, meta = load_network(spec)
    except CheckpointError as e:
        raise CheckpointError(f"init_weights={spec}: {e}") from None
    theirs, ours = source.state_dict(), net.state_dict()
    where = f"init_weights={spec}"
    what = describe_model(stored_model_config(meta))
    mine = describe_model(model_cfg)
    extra = sorted(set(theirs) - set(ours))
    misshapen = [k for k in theirs if k in ours and theirs[k].shape != ours[k].shape]
    missing = sorted(set(ours) - set(theirs))
    lacking = [k for k in missing if not training_only(k)]
    if extra or misshapen or lacking:
        key = (extra or misshapen or lacking)[0]
        detail = (
            f"{key} has shape {tuple(theirs[key].shape)}, this network {tuple(ours[key].shape)}"
            if key in misshapen
            else f"{'it has' if key in extra else 'it lacks'} {key}"
        )
        raise CheckpointError(
            f"{where} holds a {what} network, which does not fit this run's {mine}: {detail}"
        )
    net.load_state_dict(theirs, strict=False)
    if missing:
        log.info(
            "%s: %d training-only tensors keep their fresh initialisation", where, len(missing)
        )
    path = Path(str(spec))
    record = {
        "source": str(path.resolve()) if path.is_file() else str(spec),
        "sha256": zoo.card(str(spec))["sha256"]
        if zoo.is_shipped(spec)
        else file_sha256(path)
        if path.is_file()
        else None,
        "network": what,
        "source_input_size": meta.get("input_size"),
        "fresh": len(missing),
    }
    log.info("warm start from %s (%s)", record["source"], what)
    return record
