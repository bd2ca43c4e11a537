"""experiments/coarse_labels/run.py: its ``bilinear`` variant is the network's own class map, the
coarse variants are the argmax at their stride repeated, the exported coarse network returns those
logits, and a stride coarser than the network's logits is refused."""

from __future__ import annotations

import pytest
import torch

from rtseg.errors import RtsegError
from rtseg.models.lite import create
from rtseg.utils.paths import REPO_ROOT
from tests.support import load_script

SCRIPT = REPO_ROOT / "experiments" / "coarse_labels" / "run.py"
SIZE = (72, 100)  # not a multiple of 32: the padding and the crop are part of what is checked


@pytest.fixture(scope="module")
def run():
    return load_script(SCRIPT, "coarse_labels_run")


@pytest.fixture(scope="module")
def net():
    """camvid's architecture (PP-LiteSeg, out_stride 4), random weights."""
    torch.manual_seed(0)
    return create("ppliteseg", 5, encoder_weights=None, out_stride=4).eval()


def test_the_variants_read_the_networks_own_logits(run, net):
    x = torch.randn(2, 3, *SIZE)
    pad, _ = run.parts(net)
    padded = pad.padded_size(*SIZE)
    with torch.inference_mode():
        full = net(x).max(1).indices
        coarse = run.coarse_logits(net, x)
        assert coarse.shape[-2:] == (padded[0] // 4, padded[1] // 4)
        assert torch.equal(run.labels_from_coarse(coarse, SIZE, padded, "bilinear"), full)
        for name, stride in (("stride2", 2), ("stride4", 4)):
            labels = run.labels_from_coarse(coarse, SIZE, padded, name)
            assert labels.shape == full.shape
            # constant over each stride x stride cell, equal to the argmax of the cell's logits
            exported = run.CoarseNet(net, stride)(x)
            assert exported.shape[-2:] == (-(-SIZE[0] // stride), -(-SIZE[1] // stride))
            cell = exported.max(1).indices
            assert torch.equal(labels[:, ::stride, ::stride], cell)
            h, w = SIZE
            whole = cell.repeat_interleave(stride, 1).repeat_interleave(stride, 2)[:, :h, :w]
            assert torch.equal(labels, whole)
            # most pixels agree with the full-size class map (the same logits, coarser)
            assert (labels == full).float().mean() > 0.5


def test_a_stride_coarser_than_the_logits_is_refused(run, net):
    with torch.inference_mode(), pytest.raises(RtsegError, match="coarser than the network"):
        run.CoarseNet(net, 8)(torch.randn(1, 3, *SIZE))
