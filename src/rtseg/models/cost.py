"""What a network costs: parameters, FLOPs (torch.utils.flop_counter) and a quick latency figure."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from rtseg.models.lite import training_only
from rtseg.timing import time_fn


def count_params(net: nn.Module) -> int:
    """The parameters of the network as exported and shipped: training-only deep-supervision heads
    (``models.lite.training_only``) are not counted."""
    return sum(p.numel() for name, p in net.named_parameters() if not training_only(name))


def count_gflops(net: nn.Module, input_size, batch: int = 1) -> float:
    """GFLOPs of one forward pass per image, counting a multiply-add as 2 FLOPs.

    torch's FlopCounterMode counts matmul/conv FLOPs (2 per MAC) and ignores elementwise ops;
    papers that quote "GFLOPs" usually mean GMACs, i.e. half of this figure.
    """
    return _flop_counter(net, input_size, batch).get_total_flops() / 1e9 / batch


def gflops_by_module(net: nn.Module, input_size) -> dict[str, float]:
    """GFLOPs per image that each module runs itself (its submodules' left out), by dotted path
    under ``net`` (``""``: the root's own): the layer-by-layer split of ``count_gflops``, the same
    counter and total, so a profile's FLOP shares add up to the figure the project reports."""
    counts = _flop_counter(net, input_size, 1).get_flop_counts()
    root = type(net).__name__
    total = {
        k[len(root) + 1 :] if k != root else "": sum(v.values()) / 1e9
        for k, v in counts.items()
        if k == root or k.startswith(root + ".")
    }
    own = dict(total)
    for path, flops in total.items():  # minus each counted module's nearest counted ancestor
        ancestors = [a for a in total if a != path and (not a or path.startswith(a + "."))]
        if ancestors:
            own[max(ancestors, key=len)] -= flops
    return {p: f for p, f in own.items() if f > 1e-12}


@torch.no_grad()
def _flop_counter(net: nn.Module, input_size, batch: int) -> FlopCounterMode:
    """One eval-mode forward pass of zeros under torch's FLOP counter (the mode is restored)."""
    was_training = net.training
    net.eval()
    x = torch.zeros(batch, 3, *input_size, device=_device(net))
    counter = FlopCounterMode(display=False)
    with counter:
        net(x)
    net.train(was_training)
    return counter


@torch.no_grad()
def eager_latency_ms(
    net: nn.Module, input_size, min_runs: int = 5, min_seconds: float = 0.5
) -> dict:
    """Median/p90 latency of eager fp32 at batch 1: the figure every run carries next to its mIoU."""
    was_training = net.training
    net.eval()
    x = torch.randn(1, 3, *input_size, device=_device(net))
    stats = time_fn(lambda: net(x), warmup=2, min_runs=min_runs, min_seconds=min_seconds)
    net.train(was_training)
    return stats


def _device(net: nn.Module) -> torch.device:
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
