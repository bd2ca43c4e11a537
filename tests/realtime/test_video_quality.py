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
from rtseg.infer.temporal import FilterConfig, make_filter
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
def test_filter_on_a_static_scene_settles_on_the_per_frame_mask(mode):
    h, w, c = 24, 32, 4
    gray = textured(h, w)
    torch.manual_seed(0)
    first, then = torch.randn(1, c, h, w), torch.randn(1, c, h, w)
    own = then.argmax(1)[0].numpy()
    f = make_filter(FilterConfig(mode=mode, alpha=0.3, margin=1.0), (h, w))
    cue = f.cue(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    for _ in range(3):
        f.maps(first, [cue])
    outs = [f.maps(then, [cue])[0] for _ in range(30)]
    assert not np.array_equal(outs[0], own)  # the state remembers the other scene at first
    if mode == "ema":  # the average converges to this frame's own mask
        assert np.array_equal(outs[-1], own)
    else:  # the hold keeps the earlier label only where this frame's best is within the margin
        best = then.max(1).values[0]
        held = outs[-1] != own
        theirs = then[0].gather(0, torch.from_numpy(outs[-1]).long()[None])[0]
        assert (best - theirs)[torch.from_numpy(held)].max() <= 1.0
        assert np.array_equal(outs[-1], outs[1])  # and settles at once: no drift
    # the same logits every frame: the filter never changes the per-frame mask
    g = make_filter(FilterConfig(mode=mode), (h, w))
    assert all(np.array_equal(g.maps(then, [cue])[0], own) for _ in range(3))


@pytest.mark.parametrize("mode", ["ema", "flow"])
def test_filter_reduces_flicker_between_two_close_classes(mode):
    """Logits are smooth (upsampled from a stride-4/8 head): noise in 4x4 cells, two classes
    within it of each other. The per-frame labels flip; the filtered ones hold."""
    h, w = 64, 80
    gray = cv2.cvtColor(textured(h, w, 1), cv2.COLOR_GRAY2BGR)
    f = make_filter(FilterConfig(mode=mode, alpha=0.3, margin=1.0), (h, w))
    rng = np.random.default_rng(0)
    base = torch.zeros(1, 3, h, w)
    base[:, 0], base[:, 2] = 0.3, -5  # class 0 ahead of class 1 by less than the noise
    raw, filtered = [], []
    for _ in range(20):
        cells = rng.normal(0, 0.5, (1, 3, h // 4, w // 4)).astype(np.float32)
        logits = base + torch.from_numpy(cells.repeat(4, axis=2).repeat(4, axis=3))
        raw.append(logits.argmax(1)[0].numpy())
        filtered.append(f.maps(logits, [f.cue(gray)])[0])
    change = [np.mean(a != b) for a, b in zip(raw, raw[1:], strict=False)]
    change_f = [np.mean(a != b) for a, b in zip(filtered[5:], filtered[6:], strict=False)]
    assert np.mean(change) > 0.3 and np.mean(change_f) < 0.5 * np.mean(change)


def test_flow_hold_lets_a_real_change_through_at_once():
    """Hysteresis, not lag: a class that wins by more than the margin replaces the held label in
    the very frame it appears."""
    h, w = 64, 80
    gray = cv2.cvtColor(textured(h, w, 3), cv2.COLOR_GRAY2BGR)
    f = make_filter(FilterConfig(mode="flow", margin=1.0), (h, w))
    a = torch.zeros(1, 2, h, w)
    a[:, 0] = 3.0
    for _ in range(3):
        assert (f.maps(a, [f.cue(gray)])[0] == 0).all()
    b = torch.zeros(1, 2, h, w)
    b[:, 1] = 3.0  # class 1 now ahead by 3 > margin
    assert (f.maps(b, [f.cue(gray)])[0] == 1).all()
    near = torch.zeros(1, 2, h, w)
    near[:, 0] = 0.5  # class 0 back, ahead by only 0.5 < margin: class 1 holds
    assert (f.maps(near, [f.cue(gray)])[0] == 1).all()


def test_flow_hold_carries_labels_along_the_motion():
    """A labelled square that moves: the held labels move with it (the flow), and the pixels it
    uncovered take this frame's own labels where the frame no longer matches."""
    h, w = 96, 128
    rng = np.random.default_rng(4)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (h, w + 16), dtype=np.uint8), (3, 3), 0)
    f = make_filter(FilterConfig(mode="flow", margin=10.0, stride=2), (h, w))
    for shift in (0, 4, 8):
        frame = cv2.cvtColor(np.ascontiguousarray(scene[:, shift : shift + w]), cv2.COLOR_GRAY2BGR)
        logits = torch.zeros(1, 2, h, w)
        logits[0, 1, 32:64, 48 - shift : 80 - shift] = 0.5  # the object, weakly ahead
        out = f.maps(logits, [f.cue(frame)])[0]
    own = logits.argmax(1)[0].numpy()
    assert np.mean(out == own) > 0.95  # held labels followed the object, they did not stay put


def test_a_small_input_gets_a_smaller_stride():
    """DIS flow needs 12 pixels a side: the filter keeps at least 16."""
    assert make_filter(FilterConfig(mode="flow", stride=4), (24, 32)).stride == 1
    assert make_filter(FilterConfig(mode="flow", stride=4), (40, 64)).stride == 2
    assert make_filter(FilterConfig(mode="flow", stride=4), (360, 480)).cue_hw == (90, 120)


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
