"""The smaller gaps: a port in use is found before the model loads, unknown backend names stop the
run, odd frame sizes keep their size, Ctrl-C exits 130 after finishing the frames in flight."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rtseg.bench.cli import run_benchmark
from rtseg.errors import RtsegError, SinkError
from rtseg.realtime.cli import realtime
from rtseg.realtime.video import h264_encoder
from rtseg.utils.config import compose_config

from ..realtime.helpers import video_info
from ..support import read_lines, wait_for

MISSING_CKPT = "checkpoint=/nowhere/never.ckpt"  # loading it would fail: these checks come first


def test_a_port_in_use_is_found_before_the_model_loads(realtime_cfg):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = realtime_cfg("sink=http", f"http.port={port}", MISSING_CKPT)
        t0 = time.perf_counter()
        with pytest.raises(SinkError, match=f"cannot listen on 127.0.0.1:{port}.*http.port="):
            realtime(cfg)
        assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("override", ["backend=foo", "auto.candidates=[eager,opnvino]"])
def test_an_unknown_realtime_backend_stops_the_run(realtime_cfg, override):
    with pytest.raises(
        RtsegError, match=r"unknown backend '(foo|opnvino)' \(known: eager, .*auto\)"
    ):
        realtime(realtime_cfg(override, MISSING_CKPT))


def test_a_misspelt_bench_backend_next_to_a_valid_one_stops_the_run(tmp_path):
    cfg = compose_config(
        "benchmark",
        [
            f"paths.output_dir={tmp_path / 'run'}",
            f"paths.log_dir={tmp_path / 'logs'}",
            "backends=[eager,opnvino]",
            MISSING_CKPT,
        ],
    )
    with pytest.raises(RtsegError, match=r"backends: unknown backend 'opnvino' \(known: eager,"):
        run_benchmark(cfg)
    assert not (tmp_path / "run" / "results.csv").exists()


@pytest.mark.parametrize(
    "codec",
    [
        pytest.param(
            "h264", marks=pytest.mark.skipif(h264_encoder() != "libx264", reason="no libx264")
        ),
        "mp4v",
    ],
)
def test_an_odd_source_size_gives_an_output_of_the_same_size(realtime_cfg, tmp_path, codec):
    out = tmp_path / "odd.mp4"
    realtime(
        realtime_cfg(
            "synthetic.frames=3",
            "synthetic.size=[541,961]",
            f"output={out}",
            f"video.codec={codec}",
        )
    )
    count, w, h, frames = video_info(out)
    assert (w, h, count, len(frames)) == (961, 541, 3, 3)
    assert frames[0].shape == (541, 961, 3)


@pytest.mark.timeout(180)
def test_ctrl_c_exits_130_after_the_frames_in_flight(tmp_path, tiny_ckpt):
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from rtseg.realtime.cli import main; main()",
            "source=synthetic",
            "synthetic.live=true",
            "synthetic.frames=null",
            "synthetic.size=[48,64]",
            f"checkpoint={tiny_ckpt}",
            "backend=eager",
            "threads=1",
            f"output={out}",
            "progress.log_every_s=0.2",
        ],
        env={
            **os.environ,
            "RTSEG_LOG_DIR": str(tmp_path / "logs"),
            "NO_ALBUMENTATIONS_UPDATE": "1",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = read_lines(proc)
    wait_for(lines, proc, "progress:")
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=60) == 130, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    count, w, h, frames = video_info(out)  # finalised: playable, every written frame in it
    assert (w, h) == (64, 48) and count == len(frames) > 0
