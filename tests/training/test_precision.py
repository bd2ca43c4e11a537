"""The training precision is measured, not guessed from CPU flags: the faster option wins."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from rtseg.training import precision


class SlowUnder(nn.Module):
    """A tiny conv net that sleeps in the precision it is told to make slow."""

    def __init__(self, slow_in_bf16: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.slow_in_bf16 = slow_in_bf16

    def forward(self, x):
        if torch.is_autocast_enabled("cpu") == self.slow_in_bf16:
            time.sleep(0.03)
        return self.conv(x)


@pytest.mark.parametrize(("slow_in_bf16", "expected"), [(True, "32-true"), (False, "bf16-mixed")])
def test_picks_the_faster_precision(slow_in_bf16, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("RTSEG_CACHE_DIR", str(tmp_path))
    net = SlowUnder(slow_in_bf16)
    choice = precision.choose(
        net, (2, 3, 16, 16), "auto", "contiguous", model_yaml=str(slow_in_bf16)
    )
    assert choice["precision"] == expected and choice["source"] == "measured"
    assert set(choice["step_s"]) == {"32-true/contiguous", "bf16-mixed/contiguous"}
    again = precision.choose(
        net, (2, 3, 16, 16), "auto", "contiguous", model_yaml=str(slow_in_bf16)
    )
    assert again["source"] == "cache" and again["precision"] == expected


def test_given_values_are_not_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("RTSEG_CACHE_DIR", str(tmp_path))
    choice = precision.choose(SlowUnder(True), (1, 3, 8, 8), "32-true", "contiguous")
    assert choice == {
        "precision": "32-true",
        "memory_format": "contiguous",
        "step_s": {},
        "source": "given",
    }
    assert not (tmp_path / "train_precision.json").exists()


def test_memory_format_is_timed_too(tmp_path, monkeypatch):
    monkeypatch.setenv("RTSEG_CACHE_DIR", str(tmp_path))
    choice = precision.choose(SlowUnder(True), (1, 3, 8, 8), "32-true", "auto", rounds=1)
    assert set(choice["step_s"]) == {"32-true/contiguous", "32-true/channels_last"}
    with pytest.raises(Exception, match="memory_format"):
        precision.choose(SlowUnder(True), (1, 3, 8, 8), "32-true", "nhwc")


def test_validation_scores_in_fp32_under_bf16_mixed():
    """Training's val mIoU is the figure rtseg-eval prints (fp32), not an autocast variant of it."""
    import lightning as L

    from rtseg.training.module import SegmentationModule

    seen = []

    class Records(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            seen.append(torch.is_autocast_enabled("cpu"))
            out = self.conv(x)
            assert out.dtype == torch.float32
            return out

    torch.manual_seed(0)
    images = torch.rand(4, 3, 16, 16)
    masks = torch.randint(0, 3, (4, 16, 16))
    loader = torch.utils.data.DataLoader(list(zip(images, masks, strict=True)), batch_size=2)
    scores = {}
    for prec in ("32-true", "bf16-mixed"):
        torch.manual_seed(1)
        module = SegmentationModule(Records(), num_classes=3, train_metrics=False)
        trainer = L.Trainer(
            precision=prec, accelerator="cpu", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        (scores[prec],) = trainer.validate(module, loader, verbose=False)
    assert seen and not any(seen)
    assert scores["bf16-mixed"] == scores["32-true"]
