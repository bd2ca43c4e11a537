"""Realtime's backend: int8 from real images within the limits, and auto's cached artifact run as is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtseg.errors import RtsegError
from rtseg.infer.open import open_model
from rtseg.infer.options import InferOptions
from rtseg.realtime.cli import realtime
from rtseg.realtime.model import RealtimeModel

from .helpers import FRAME_H, FRAME_W

SMALL = [
    "source=synthetic",
    "synthetic.frames=6",
    f"synthetic.size=[{FRAME_H},{FRAME_W}]",
    "sink=none",
    "calibration.frames=3",
    "calibration.stride=2",
]
DATA = [
    "data=synthetic",
    "data.input_size=[32,48]",
    "data.lengths={train:4,val:2,test:2}",
    "calibration.images=4",
    "reduced_precision.eval_images=2",
]


def test_int8_calibrates_on_the_dataset_and_records_it(realtime_cfg, tiny_ckpt, tmp_path):
    pytest.importorskip("onnxruntime")
    cfg = realtime_cfg(
        *SMALL,
        *DATA,
        f"checkpoint={tiny_ckpt}",
        "backend=onnxruntime-int8",
        "reduced_precision.max_miou_drop=100",
    )
    realtime(cfg)
    report = json.loads((tmp_path / "run" / "realtime.json").read_text())
    cal = report["calibration"]
    assert cal["calibration"] == {"source": "synthetic/train images (the first 4)", "images": 4}
    assert cal["quality"]["accepted"] and cal["quality"]["eval_images"] == 2
    assert "miou_drop_points" in cal["quality"] and 0 <= cal["quality"]["agreement"] <= 1
    side = json.loads(Path(cal["artifact"]).with_suffix(".json").read_text())
    assert side["calibration"]["images"] == 4 and "onnxruntime-int8" in side["quality"]
    assert "random" not in json.dumps(cal)


def test_int8_outside_the_limits_is_recorded_or_refused(realtime_cfg, tiny_ckpt):
    pytest.importorskip("onnxruntime")
    over = [*SMALL, *DATA, f"checkpoint={tiny_ckpt}", "backend=onnxruntime-int8"]
    # named explicitly: it runs (with a warning), the measured quality recorded as not accepted
    info = realtime(realtime_cfg(*over, "reduced_precision.max_miou_drop=-1"))
    assert info["calibration"]["quality"]["accepted"] is False
    # reduced_precision.enforce=true: refused in one line
    cfg = realtime_cfg(
        *over, "reduced_precision.max_miou_drop=-1", "reduced_precision.enforce=true"
    )
    with pytest.raises(RtsegError, match="outside the limits.*val mIoU drop"):
        realtime(cfg)


def test_int8_with_no_images_refuses_in_one_line(tiny_ckpt, tmp_path):
    with pytest.raises(RtsegError, match="needs real images.*data="):
        open_model(tiny_ckpt, "openvino-int8", threads=1, log_dir=tmp_path)


def test_auto_runs_the_cached_artifact_file(realtime_cfg, tiny_ckpt, tmp_path):
    pytest.importorskip("onnxruntime")
    over = [*SMALL, f"checkpoint={tiny_ckpt}", "backend=auto", "auto.candidates=[onnxruntime]"]
    over += ["auto.seconds=0.1"]
    first = realtime(realtime_cfg(*over))
    index = json.loads((tmp_path / "logs" / "bench" / "auto.json").read_text())
    (entry,) = index.values()
    assert first["backend"] == "onnxruntime" and entry["threads"] == 1
    assert first["calibration"]["artifact"] == entry["artifact"]
    opts = InferOptions(cache_dir=tmp_path / "logs" / "bench")
    opened = open_model(tiny_ckpt, "auto", threads=1, options=opts, log_dir=tmp_path / "logs")
    model = RealtimeModel(opened, threads=1)
    assert str(model.backend.path) == entry["artifact"] and "cached" in model.backend.note
    infer = model.make_infer()  # the pipeline's backend is that very object
    assert all(b.path == model.backend.path for b in infer.backends.values())
