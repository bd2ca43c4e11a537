"""temporal=auto decides by measurement: the most consistent filter whose measured cost the stream
can afford (a live source's frame rate, a share of a file's per-frame time), said with its reason,
remembered per machine and model."""

from __future__ import annotations

import json

import torch

from rtseg.infer.temporal import FilterConfig
from rtseg.realtime.cli import realtime
from rtseg.realtime.temporal_choice import choose_filter, decide

AUTO = FilterConfig.from_cfg("auto", {})
MEASURED = {"infer_ms": 20.0, "plain_ms": 1.0, "costs": {"flow": 1.0, "ema": 3.0, "none": 0.0}}


def test_files_take_the_most_consistent_filter_within_the_share():
    chosen = decide(AUTO, MEASURED, fps=25.0, live=False)
    assert chosen.mode == "flow" and "5% of the unfiltered 21.0 ms" in chosen.reason
    tight = FilterConfig.from_cfg("auto", {"auto_max_share": 0.02})
    assert decide(tight, MEASURED, fps=None, live=False).mode == "none"


def test_a_live_source_keeps_its_frame_rate():
    assert decide(AUTO, MEASURED, fps=25.0, live=True).mode == "flow"  # 22 ms <= 36 ms
    slow = {**MEASURED, "infer_ms": 35.0}  # 36 ms unfiltered: only the free filter fits
    chosen = decide(AUTO, slow, fps=25.0, live=True)
    assert chosen.mode == "none" and "flow, ema would not fit" in chosen.reason
    middle = {**MEASURED, "costs": {"flow": 20.0, "ema": 3.0, "none": 0.0}}
    assert decide(AUTO, middle, fps=25.0, live=True).mode == "ema"


def test_the_measurement_is_remembered(tmp_path, tiny_net):
    calls = []

    def infer(x):
        calls.append(1)
        return tiny_net(x)

    xs = [torch.randn(1, 3, 64, 80, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    first = choose_filter(
        AUTO, infer, xs, (64, 80), fps=None, live=False, cache_dir=tmp_path, key="k"
    )
    assert first.mode in ("flow", "ema", "none") and "(measured here)" in first.reason
    table = json.loads((tmp_path / "temporal.json").read_text())
    (entry,) = table.values()
    assert set(entry["costs"]) == {"flow", "ema", "none"} and entry["infer_ms"] > 0
    n = len(calls)
    again = choose_filter(
        AUTO, infer, xs, (64, 80), fps=None, live=False, cache_dir=tmp_path, key="k"
    )
    assert len(calls) == n and "(cached here)" in again.reason and again.mode == first.mode


def test_a_named_filter_is_not_second_guessed(tmp_path, tiny_net):
    named = FilterConfig.from_cfg("ema", {})
    assert choose_filter(
        named, tiny_net, [torch.zeros(1, 3, 32, 32)], (32, 32), fps=25, live=True,
        cache_dir=tmp_path, key="k",
    ) is named  # fmt: skip
    assert not (tmp_path / "temporal.json").exists()


def test_realtime_reports_the_choice_and_its_reason(realtime_cfg, checkpoint_writer, tmp_path):
    ckpt = checkpoint_writer(tmp_path / "m.ckpt")
    info = realtime(
        realtime_cfg(
            f"checkpoint={ckpt}", "synthetic.frames=6", "synthetic.size=[64,96]", "sink=none"
        )
    )
    temporal = info["temporal"]
    assert temporal["requested"] == "auto" and temporal["mode"] in ("flow", "ema", "none")
    assert "a frame" in temporal["reason"] and "here)" in temporal["reason"]
    assert (tmp_path / "logs" / "bench" / "temporal.json").is_file()
