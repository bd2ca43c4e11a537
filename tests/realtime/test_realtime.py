"""rtseg-realtime end to end on tiny inputs: outputs, ordering, dropping, signals, faults, checkpoint choice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.checkpoints.spec import choose_checkpoint
from rtseg.errors import CheckpointError, SourceError
from rtseg.infer.frames import Preprocess
from rtseg.realtime.cli import realtime
from rtseg.realtime.frame_queue import FrameQueue
from rtseg.realtime.image_folder_source import ImageFolderSource
from rtseg.realtime.model import Infer
from rtseg.realtime.open_source import open_source
from rtseg.realtime.overlay import Overlay
from rtseg.realtime.pipeline import Pipeline, PipelineConfig
from rtseg.realtime.sinks import Sink
from rtseg.realtime.synthetic_source import SyntheticSource
from rtseg.realtime.video_source import Reconnect, VideoSource
from rtseg.tracking.runs import RunRecord

from .helpers import FRAME_H, FRAME_W, decode_index, video_info

CLI = [sys.executable, "-c", "from rtseg.realtime.cli import main; main()"]


def test_synthetic_source_end_to_end_writes_playable_mp4(realtime_cfg, tiny_ckpt, tmp_path):
    out = tmp_path / "out.mp4"
    cfg = realtime_cfg(
        "source=synthetic",
        "synthetic.frames=12",
        f"synthetic.size=[{FRAME_H},{FRAME_W}]",
        f"checkpoint={tiny_ckpt}",
        "sink=file",
        f"output={out}",
        "benchmark=true",
        "benchmark_seconds=0.05",
        "max_batch=2",
    )
    info = realtime(cfg)
    count, w, h, frames = video_info(out)
    assert (count, w, h, len(frames)) == (12, FRAME_W, FRAME_H, 12)
    assert not np.array_equal(frames[0], frames[-1])  # the scene moves
    report = json.loads((tmp_path / "run" / "realtime.json").read_text())
    row = report["summary"]
    assert (
        row["frames"] == 12 and row["dropped"] == 0 and row["source_size"] == f"{FRAME_H}x{FRAME_W}"
    )
    for key in (
        "pipeline_fps",
        "sequential_fps",
        "model_only_fps",
        "ratio_vs_sequential",
        "latency_p90_ms",
    ):
        assert row[key] is not None and row[key] > 0, key
    assert report["pipeline"]["latency_ms"]["inference"]["median_ms"] > 0
    assert report["pipeline"]["latency_ms"]["postprocess"]["median_ms"] > 0
    assert (tmp_path / "run" / "realtime.csv").read_text().startswith("model,")
    assert info["backend"] == "eager"


def test_file_source_keeps_every_frame_in_order(realtime_cfg, tiny_ckpt, indexed_video, tmp_path):
    """Two inference workers and batching may finish frames out of order: the output must not."""
    out = tmp_path / "out.mp4"
    cfg = realtime_cfg(
        f"source={indexed_video}",
        f"checkpoint={tiny_ckpt}",
        f"output={out}",
        "workers=2",
        "max_batch=3",
        "overlay.alpha=0",
        "overlay.legend=false",
        "overlay.hud=false",
        "mask_export=png",
    )
    info = realtime(cfg)
    assert info["drop"] == "none"
    count, w, h, frames = video_info(out)
    assert (count, w, h) == (30, FRAME_W, FRAME_H)
    assert [decode_index(f) for f in frames] == list(range(30))
    masks = sorted((tmp_path / "run" / "masks").glob("*.png"))
    assert [m.name for m in masks] == [f"{i:06d}.png" for i in range(30)]
    assert cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED).shape == (FRAME_H, FRAME_W)


class RecordingSink(Sink):
    def __init__(self, delay: float = 0.0):
        self.delay, self.indices = delay, []

    def write(self, index, frame, labels):
        time.sleep(self.delay)
        self.indices.append(index)


class SlowRandomBackend:
    """Logits whose class map is all zeros, after a random delay: workers overtake each other."""

    name, precision = "stub", "fp32"

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def __call__(self, x):
        import torch

        time.sleep(float(self.rng.uniform(0, 0.01)))
        return torch.zeros(x.shape[0], 2, *x.shape[2:])


def stub_pipeline(source, sink, drop, workers=1, max_batch=2):
    seeds = iter(range(100))
    return Pipeline(
        source,
        Preprocess((16, 24), (0.5,) * 3, (0.25,) * 3),
        lambda: Infer({0: SlowRandomBackend(next(seeds))}),
        Overlay(None, ["a", "b"]),
        [sink],
        PipelineConfig(drop=drop, max_batch=max_batch, workers=workers, queue_size=4),
    )


def test_reorders_out_of_order_workers():
    sink = RecordingSink()
    stats = stub_pipeline(SyntheticSource(frames=40, size=(32, 48)), sink, "none", workers=3).run()
    assert sink.indices == list(range(40))
    assert stats["frames_dropped"] == 0 and stats["frames_written"] == 40


def test_drop_latest_with_slow_consumer_drops_and_never_lags():
    delay = 0.05
    source = SyntheticSource(frames=80, size=(32, 48), fps=200, live=True)  # 0.4 s of "camera"
    sink = RecordingSink(delay)
    stats = stub_pipeline(source, sink, "latest").run()
    assert stats["frames_dropped"] > 0
    assert stats["frames_written"] + stats["frames_dropped"] == stats["frames_captured"] == 80
    assert sink.indices == sorted(sink.indices)
    # a lagging (blocking) pipeline would reach ~70 x 50 ms; dropping keeps it to a few frames
    assert stats["latency_ms"]["end_to_end"]["p90_ms"] < 12 * delay * 1e3
    assert 79 in sink.indices  # the newest frame is shown, not a stale backlog


def test_frame_queue_drop_mode_evicts_oldest():
    q = FrameQueue(2, drop=True)
    for i in range(5):
        q.put(i)
    q.close()
    assert q.get_batch(10) == [3, 4] and q.dropped == 3 and q.get_batch(1) == []


@pytest.mark.timeout(120)
def test_sigint_mid_stream_leaves_valid_file(tiny_ckpt, tmp_path):
    out = tmp_path / "out.mp4"
    env = {**os.environ, "RTSEG_LOG_DIR": str(tmp_path / "logs"), "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.Popen(
        [
            *CLI,
            "source=synthetic",
            "synthetic.frames=100000",
            f"synthetic.size=[{FRAME_H},{FRAME_W}]",
            f"checkpoint={tiny_ckpt}",
            "backend=eager",
            "threads=1",
            f"output={out}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 90
    # the mp4 is written under a temporary name beside out.mp4 until it is finalised
    while (
        not any(p.stat().st_size > 20_000 for p in tmp_path.glob(f".{out.name}.*.tmp.mp4"))
        and time.time() < deadline
        and proc.poll() is None
    ):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output  # 128 + SIGINT, after finishing the frames in flight
    assert "SIGINT" in output
    count, w, h, frames = video_info(out)
    assert (w, h) == (FRAME_W, FRAME_H) and count > 0 and len(frames) == count
    report = json.loads(next((tmp_path / "logs").rglob("realtime.json")).read_text())
    assert report["interrupted"] and report["pipeline"]["frames_written"] == count


def test_missing_source_is_one_line_and_nonzero(tmp_path):
    env = {**os.environ, "RTSEG_LOG_DIR": str(tmp_path / "logs"), "NO_ALBUMENTATIONS_UPDATE": "1"}
    res = subprocess.run(
        [*CLI, "source=/no/such/file.mp4"], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "/no/such/file.mp4" in lines[0], res.stderr


def test_mismatched_checkpoint_gives_its_error(realtime_cfg, tmp_path, checkpoint_writer):
    # weights of a width-16 net, recorded as a width-8 net
    bad = checkpoint_writer(tmp_path / "bad.ckpt", width=16, yaml_width=8)
    with pytest.raises(CheckpointError, match="does not fit"):
        realtime(realtime_cfg("synthetic.frames=2", f"checkpoint={bad}"))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        realtime(realtime_cfg("synthetic.frames=2", f"checkpoint={junk}"))


def fake_run(root: Path, name: str, miou: float | None, dataset="synthetic", ckpt=True, tags=()):
    run = root / "train" / "runs" / name
    (run / "checkpoints").mkdir(parents=True)
    best = run / "checkpoints" / "best.ckpt"
    if ckpt:
        best.write_bytes(b"x")
    RunRecord(
        run_dir=str(run),
        status="finished",
        dataset=dataset,
        model="baseline",
        val_miou_best=miou,
        best_ckpt=str(best),
        tags=list(tags),
    ).save()
    return best


def test_checkpoint_best_picks_highest_val_miou(tmp_path):
    logs = tmp_path / "logs"
    with pytest.raises(CheckpointError, match="rtseg-train"):
        choose_checkpoint("best", logs)
    fake_run(logs, "a", 0.31)
    winner = fake_run(logs, "b", 0.72, tags=["x"])
    fake_run(logs, "c", 0.55)
    fake_run(logs, "d", 0.99, ckpt=False)  # best score but its checkpoint is gone
    fake_run(logs, "e", None)
    camvid = fake_run(logs, "f", 0.40, dataset="camvid")
    with pytest.raises(CheckpointError, match="different datasets"):
        choose_checkpoint({"path": "best"}, logs)  # synthetic and camvid mIoU do not compare
    choice = choose_checkpoint({"path": "best", "dataset": "synthetic"}, logs)
    assert choice.path == winner and "72.00" in choice.reason and "b" in choice.reason
    assert choose_checkpoint({"path": "best", "dataset": "camvid"}, logs).path == camvid
    assert choose_checkpoint(str(winner.parent.parent), logs).path == winner  # a run folder
    with pytest.raises(CheckpointError, match="matching dataset=synthetic, tag=y"):
        choose_checkpoint({"path": "best", "dataset": "synthetic", "tag": "y"}, logs)


def test_best_through_the_entrypoint(realtime_cfg, tmp_path, checkpoint_writer):
    """checkpoint=best (the default) finds the run under paths.log_dir and loads it."""
    ckpt_dir = tmp_path / "logs" / "train" / "runs" / "r1" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    ckpt = checkpoint_writer(ckpt_dir / "best.ckpt")
    RunRecord(
        run_dir=str(ckpt_dir.parent),
        status="finished",
        dataset="synthetic",
        model="baseline",
        val_miou_best=0.5,
        best_ckpt=str(ckpt),
    ).save()
    info = realtime(
        realtime_cfg("synthetic.frames=3", f"synthetic.size=[{FRAME_H},{FRAME_W}]", "sink=none")
    )
    assert info["checkpoint"] == str(ckpt) and info["pipeline"]["frames_written"] == 3


def test_live_stream_that_drops_reconnects(indexed_video):
    source = VideoSource(
        str(indexed_video), live=True, max_frames=45, reconnect=Reconnect(backoff_s=0.01)
    )
    source.is_file = False  # the file stands in for a stream that drops at its end
    indices = [decode_index(f.image) for f in source]
    assert len(indices) == 45 and source.reconnects >= 1
    assert indices[30:35] == [0, 1, 2, 3, 4]  # the stream came back from its start


def test_corrupt_frames_are_skipped_and_counted(tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    (tmp_path / "2.png").write_bytes(b"garbage")
    source = open_source(str(tmp_path))
    assert isinstance(source, ImageFolderSource)
    assert [f.image[0, 0, 0] for f in source] == [0, 50, 150] and source.skipped == 1
    assert len(list(open_source(str(tmp_path / "*.png")))) == 3


def test_bad_sources_raise_source_error(tmp_path):
    with pytest.raises(SourceError, match="/no/such/file.mp4"):
        open_source("/no/such/file.mp4")
    text = tmp_path / "notavideo.mp4"
    text.write_text("hello")
    with pytest.raises(SourceError, match="notavideo.mp4"):
        open_source(str(text))
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "*.jpg"))


def test_overlay_output_at_source_resolution():
    ov = Overlay([[255, 0, 0], [0, 255, 0]], ["road", "car"], alpha=1.0, legend=True, hud=True)
    frame = np.zeros((90, 160, 3), np.uint8)
    labels = np.ones((30, 40), np.uint8)
    out = ov.draw(frame, labels, ["10 fps"])
    assert out.shape == frame.shape
    assert tuple(out[-1, 0]) == (0, 255, 0)  # BGR green where the class map says "car"


def test_stream_gone_for_good_finishes_frames_then_reports(indexed_video, tmp_path):
    copy = tmp_path / "stream.mp4"
    copy.write_bytes(indexed_video.read_bytes())
    source = VideoSource(
        str(copy), live=True, reconnect=Reconnect(reconnect_attempts=2, backoff_s=0.01)
    )
    source.is_file = False  # a stream, played from a file: at its end it counts as dropped
    copy.unlink()  # the "camera" disappears: every reconnect attempt fails
    sink = RecordingSink()
    pipeline = stub_pipeline(source, sink, "none")
    stats = pipeline.run()
    assert sink.indices == list(range(30)) and stats["frames_written"] == 30
    assert isinstance(pipeline.source_error, SourceError) and "lost source" in str(
        pipeline.source_error
    )


def test_window_without_display_falls_back_to_file(tmp_path, monkeypatch):
    from rtseg.realtime.cli import make_sinks
    from rtseg.realtime.sinks import MaskSink, VideoFileSink

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sinks = make_sinks("window", None, tmp_path, 25, mask_export="npz")
    assert isinstance(sinks[0], VideoFileSink) and sinks[0].path == tmp_path / "realtime.mp4"
    assert isinstance(sinks[1], MaskSink)
    sinks[1].write(7, np.zeros((20, 30, 3), np.uint8), np.ones((10, 15), np.uint8))
    mask = np.load(tmp_path / "masks" / "000007.npz")["mask"]
    assert mask.shape == (20, 30) and mask.max() == 1


class FixedBatchBackend:
    """Refuses any batch but its own, like an exported ONNX/OpenVINO model."""

    def __init__(self, batch):
        self.batch, self.calls = batch, []

    def __call__(self, x):
        import torch

        assert x.shape[0] == self.batch
        self.calls.append(self.batch)
        logits = torch.zeros(x.shape[0], 8, *x.shape[2:])  # class map of image i: all i
        logits[torch.arange(x.shape[0]), torch.arange(x.shape[0])] = 1.0
        return logits


def test_infer_pads_and_chunks_for_fixed_batch_backends():
    one, four = FixedBatchBackend(1), FixedBatchBackend(4)
    infer = Infer({1: one, 4: four})
    xs = [np.zeros((3, 4, 5), np.float32)] * 3
    assert infer(xs[:1]).shape == (1, 4, 5) and one.calls == [1]
    assert [int(m[0, 0]) for m in infer(xs)] == [0, 1, 2] and four.calls == [4]  # padded 3 -> 4
    assert len(Infer({1: one})(xs * 2)) == 6  # chunked into batch-1 calls
