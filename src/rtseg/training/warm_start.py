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

from torch import nn

from rtseg.checkpoints.meta import describe_model, stored_model_config
from rtseg.checkpoints.reading import load_network, weights_identity
from rtseg.errors import CheckpointError
from rtseg.models.lite import training_only

log = logging.getLogger(__name__)


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
    record = {
        **weights_identity(spec),
        "network": what,
        "source_input_size": meta.get("input_size"),
        "fresh": len(missing),
    }
    log.info("warm start from %s (%s)", record["source"], what)
    return record
