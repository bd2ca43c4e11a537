"""Video quality in realtime: the temporal filter, synthetic ground truth, TC and stream mIoU in the
report, and a reduced-precision backend judged on the stream."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch

from rtseg.errors import RtsegError, SourceError
from rtseg.infer.temporal import FilterConfig, TemporalFilter
from rtseg.realtime.cli import realtime
from rtseg.realtime.stream_quality import StreamRecorder, stream_agreement, stream_miou
from rtseg.realtime.synthetic_source import SyntheticSource

from .helpers import FRAME_H, FRAME_W, decode_index, video_info

PALETTE = np.array([[0, 0, 0], [0, 0, 255], [0, 255, 0], [255, 0, 0], [255, 255, 255]], np.uint8)


def block_scene(h=150, w=200, block=50, seed=0):
    """A scene of flat coloured blocks: (BGR image, labels), each label drawn in its own colour."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(PALETTE), (h // block, w // block), dtype=np.uint8)
    labels = np.kron(labels, np.ones((block, block), np.uint8))
    return PALETTE[labels], labels


def test_synthetic_labels_match_its_frames():
    """Same pan and zoom: away from block edges (blended by the linear resize) colours match labels."""
    source = SyntheticSource(frames=30, size=(60, 80), scene=block_scene())
    checked = 0
    for frame in source:
        labels = source.label(frame.index)
        assert labels.shape == frame.image.shape[:2]
        seen = np.argmin(  # the class whose colour is nearest to each pixel
            np.abs(frame.image[..., None, :].astype(int) - PALETTE[None, None]).sum(-1), -1
        )
        assert (seen == labels).mean() > 0.95, frame.index
        # another frame's labels fit worse: the labels follow this frame's own view
        other = source.label((frame.index + 3) % 30)
        assert (seen == other).mean() < (seen == labels).mean(), frame.index
        checked += 1
    assert checked == 30
    assert source.label(7, (30, 40)).shape == (30, 40)
    assert not np.array_equal(source.label(0), source.label(15))  # the labels move with the view
    assert source.reopen().label(7).tolist() == source.label(7).tolist()


def test_stream_miou_of_perfect_masks_is_one_and_wrong_classes_are_said():
    source = SyntheticSource(frames=5, size=(36, 64))
    rec = StreamRecorder()
    for frame in source:
        rec(frame.index, frame.image, source.label(frame.index, (18, 32)))
    res = stream_miou(rec, source, source.class_names)
    assert res["miou"] == pytest.approx(1.0) and res["frames"] == 5 and res["size"] == [18, 32]
    assert stream_miou(rec, source, ["a", "b"])["miou"] is None


def textured(h, w, seed=0):
    return cv2.GaussianBlur(
        np.random.default_rng(seed).integers(0, 255, (h, w), dtype=np.uint8), (5, 5), 0
    )


@pytest.mark.parametrize("mode", ["ema", "flow"])
def test_filter_on_a_static_scene_converges_to_the_per_frame_mask(mode):
    h, w, c = 24, 32, 4
    gray = textured(h, w)
    f = TemporalFilter(FilterConfig(mode=mode, alpha=0.3), (h, w))
    torch.manual_seed(0)
    first, then = torch.randn(1, c, h, w), torch.randn(1, c, h, w)
    own = then.argmax(1)[0].numpy()
    cue = f.cue(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    for _ in range(3):
        f.maps(first, [cue])
    outs = [f.maps(then, [cue])[0] for _ in range(30)]
    assert not np.array_equal(outs[0], own)  # the state remembers the other scene at first
    assert np.array_equal(outs[-1], own)  # ... and converges to this frame's own mask
    # the same logits every frame: the filter never changes the per-frame mask
    g = TemporalFilter(FilterConfig(mode=mode), (h, w))
    assert all(np.array_equal(g.maps(then, [cue])[0], own) for _ in range(3))


def test_filter_reduces_flicker_between_two_close_classes():
    h, w = 32, 40
    gray = cv2.cvtColor(textured(h, w, 1), cv2.COLOR_GRAY2BGR)
    f = TemporalFilter(FilterConfig(mode="flow", alpha=0.3), (h, w))
    rng = np.random.default_rng(0)
    base = torch.zeros(1, 3, h, w)
    base[:, 0], base[:, 2] = 0.3, -5  # class 0 ahead of class 1 by less than the noise
    raw, filtered = [], []
    for _ in range(20):
        logits = base + torch.from_numpy(rng.normal(0, 0.5, (1, 3, h, w)).astype(np.float32))
        raw.append(logits.argmax(1)[0].numpy())
        filtered.append(f.maps(logits, [f.cue(gray)])[0])
    change = [np.mean(a != b) for a, b in zip(raw, raw[1:], strict=False)]
    change_f = [np.mean(a != b) for a, b in zip(filtered[5:], filtered[6:], strict=False)]
    assert np.mean(change) > 0.3 and np.mean(change_f) < 0.5 * np.mean(change)


def test_bad_filter_settings_are_one_line():
    with pytest.raises(RtsegError, match="temporal=blur"):
        FilterConfig.from_cfg("blur")
    with pytest.raises(RtsegError, match="alpha"):
        FilterConfig.from_cfg("ema", {"alpha": 0})
    with pytest.raises(RtsegError, match="workers=1"):
        FilterConfig.from_cfg("flow", {}, workers=2)
    with pytest.raises(RtsegError, match="flow_preset"):
        FilterConfig.from_cfg("flow", {"flow_preset": "slow"})
    assert FilterConfig.from_cfg(None).mode == "none"
    assert FilterConfig.from_cfg("none", {}, workers=2).mode == "none"
    auto = FilterConfig.from_cfg("auto", {"alpha": 0.4})
    assert (auto.mode, auto.requested, auto.alpha) == ("flow", "auto", 0.4)
    assert FilterConfig.from_cfg("auto", {}, workers=2).mode == "none"  # off, not refused


def test_filter_in_the_pipeline_keeps_order_and_shape_and_reports_tc(
    realtime_cfg, tiny_ckpt, indexed_video, tmp_path
):
    out = tmp_path / "out.mp4"
    info = realtime(
        realtime_cfg(
            f"source={indexed_video}",
            f"checkpoint={tiny_ckpt}",
            f"output={out}",
            "temporal=flow",
            "max_batch=3",
            "overlay.alpha=0",
            "overlay.legend=false",
            "overlay.hud=false",
            "mask_export=png",
            "benchmark=true",
            "benchmark_seconds=0.05",
        )
    )
    count, w, h, frames = video_info(out)
    assert (count, w, h) == (30, FRAME_W, FRAME_H)
    assert [decode_index(f) for f in frames] == list(range(30))
    masks = sorted((tmp_path / "run" / "masks").glob("*.png"))
    assert [m.name for m in masks] == [f"{i:06d}.png" for i in range(30)]
    assert cv2.imread(str(masks[-1]), cv2.IMREAD_UNCHANGED).shape == (FRAME_H, FRAME_W)
    report = json.loads((tmp_path / "run" / "realtime.json").read_text())
    assert report["temporal"]["mode"] == "flow" and report["summary"]["temporal"] == "flow"
    quality = report["stream_quality"]
    assert quality["pairs"] == 29 and 0 <= quality["tc"] <= 1 and quality["miou"] is None
    assert report["summary"]["tc"] == quality["tc"]
    assert info["benchmark"]["sequential"]["frames"] == 30


def test_synthetic_stream_reports_miou(realtime_cfg, tiny_ckpt):
    info = realtime(
        realtime_cfg(
            "source=synthetic",
            "synthetic.frames=6",
            f"synthetic.size=[{FRAME_H},{FRAME_W}]",
            f"checkpoint={tiny_ckpt}",
            "sink=none",
            "benchmark=true",
            "benchmark_seconds=0.05",
        )
    )
    miou = info["stream_quality"]["miou"]
    assert 0 <= miou["miou"] <= 1 and miou["frames"] == 6 and miou["size"] == [32, 48]
    assert info["stream_agreement"] is None  # eager fp32: nothing to compare


def test_filter_with_two_workers_is_refused(realtime_cfg, tiny_ckpt):
    with pytest.raises(RtsegError, match="workers=1"):
        realtime(realtime_cfg("temporal=ema", "workers=2", f"checkpoint={tiny_ckpt}"))


class FlippingBackend:
    """An "int8" backend whose class map is the fp32 one with a known share of pixels changed."""

    name, precision, batch_size = "stub-int8", "int8", 1

    def __init__(self, net, share):
        self.net, self.share = net, share

    def labels(self, x):
        labels = self.net(x).argmax(1)
        flat = labels.view(-1)
        n = round(self.share * flat.numel())
        flat[:n] = (flat[:n] + 1) % 3
        return labels


def test_stream_agreement_reports_the_flipped_share_and_warns(caplog):
    net = torch.nn.Conv2d(3, 3, 1).eval()
    frames = [torch.randn(1, 3, 20, 25) for _ in range(4)]
    read = lambda: (frames, "4 test frames")  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="rtseg.realtime"):
        res = stream_agreement(FlippingBackend(net, 0.1), net, read, 0.95)
    assert res["agreement"] == pytest.approx(0.9, abs=1e-3) and res["frames"] == 4
    assert res["below_min"] and "below stream_agreement.min" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rtseg.realtime"):
        assert not stream_agreement(FlippingBackend(net, 0.02), net, read, 0.95)["below_min"]
    assert not caplog.text
    fp32 = FlippingBackend(net, 0.5)
    fp32.precision = "fp32"
    assert stream_agreement(fp32, net, read, 0.95) is None
    assert stream_agreement(FlippingBackend(net, 0), None, read, 0.95)["agreement"] is None

    def unreadable():
        raise SourceError("cannot open source camera 0")

    res = stream_agreement(FlippingBackend(net, 0), net, unreadable, 0.95)
    assert res["agreement"] is None and "camera 0" in res["reason"]
