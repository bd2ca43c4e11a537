"""sink=http: MJPEG stream + stats JSON + page; slow viewers never stall the pipeline."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest

from rtseg.realtime.http import HttpSink
from rtseg.realtime.sinks import SinkError

from .helpers import FRAME_H, FRAME_W

CLI = [sys.executable, "-c", "from rtseg.realtime.cli import main; main()"]


def feed(sink: HttpSink, stop: threading.Event, fps: float = 50) -> None:
    i = 0
    while not stop.is_set():
        frame = np.full((FRAME_H, FRAME_W, 3), i % 255, np.uint8)
        sink.write(i, frame, None)
        i += 1
        time.sleep(1 / fps)


def read_jpegs(url: str, n: int, timeout: float = 10.0) -> list[np.ndarray]:
    """The first ``n`` JPEG parts of a multipart MJPEG stream, decoded."""
    images, buf = [], b""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(images) < n:
            buf += resp.read1(65536)
            start, end = buf.find(b"\xff\xd8"), buf.find(b"\xff\xd9")
            if start >= 0 and end > start:
                jpeg, buf = buf[start : end + 2], buf[end + 2 :]
                images.append(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    return images


@pytest.fixture
def served():
    sink = HttpSink(
        port=0,
        legend=[("road", [128, 64, 128]), ("<car>", [0, 0, 142])],
        stats=lambda: {"fps": 12.5, "frames_dropped": 1},
    )
    stop = threading.Event()
    thread = threading.Thread(target=feed, args=(sink, stop), daemon=True)
    thread.start()
    yield sink
    stop.set()
    thread.join()
    sink.close()


def test_stream_stats_and_page(served):
    frames = read_jpegs(served.url + "stream", 3)
    assert all(f.shape == (FRAME_H, FRAME_W, 3) for f in frames)
    assert len({int(f[0, 0, 0]) for f in frames}) == 3  # three different frames, in order
    stats = json.loads(urllib.request.urlopen(served.url + "stats.json", timeout=5).read())
    assert stats["fps"] == 12.5 and stats["frames_dropped"] == 1 and stats["running"] is True
    assert {"stream_skipped", "clients"} <= stats.keys()
    page = urllib.request.urlopen(served.url, timeout=5).read().decode()
    assert 'src="/stream"' in page and "rgb(128,64,128)" in page and "&lt;car&gt;" in page
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(served.url + "nope", timeout=5)


def test_a_viewer_that_stops_reading_never_stalls_writes(served):
    stuck = socket.create_connection(("127.0.0.1", served.port))
    stuck.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")  # ... and never reads
    time.sleep(0.3)
    big = np.random.default_rng(0).integers(0, 255, (540, 960, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    for i in range(100):  # ~10 MB of JPEG: far beyond what the socket buffers hold
        served.write(i, big, None)
    assert time.perf_counter() - t0 < 5.0
    stats = json.loads(urllib.request.urlopen(served.url + "stats.json", timeout=5).read())
    assert stats["clients"] >= 1
    stuck.close()


def test_port_in_use_is_one_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(SinkError, match=f"127.0.0.1:{port}.*http.port"):
            HttpSink(port=port)


def chromium() -> str | None:
    return next(
        (
            shutil.which(b)
            for b in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(b)
        ),
        None,
    )


@pytest.mark.timeout(180)
@pytest.mark.skipif(chromium() is None, reason="no chromium binary (apt-get install chromium)")
def test_browser_shows_the_page_updating(tiny_ckpt, tmp_path):
    """rtseg-realtime source=synthetic sink=http, loaded in headless Chromium: two screenshots differ."""
    env = {**os.environ, "RTSEG_LOG_DIR": str(tmp_path / "logs"), "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.Popen(
        [
            *CLI,
            "source=synthetic",
            "synthetic.size=[240,320]",
            f"checkpoint={tiny_ckpt}",
            "backend=eager",
            "threads=1",
            "sink=http",
            "http.port=0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        deadline = time.time() + 90
        while url is None and time.time() < deadline and proc.poll() is None:
            found = re.search(r"live view at (http://\S+)", proc.stdout.readline())
            url = found and found.group(1)
        assert url, "the server never started"
        shots = []
        for name in ("a.png", "b.png"):
            path = tmp_path / name
            subprocess.run(
                [
                    chromium(),
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=720,420",
                    f"--screenshot={path}",
                    url,
                ],
                capture_output=True,
                timeout=60,
            )
            shots.append(cv2.imread(str(path)))
            if os.environ.get("RTSEG_KEEP_SCREENSHOT"):
                shutil.copy(path, os.environ["RTSEG_KEEP_SCREENSHOT"] + name)
            time.sleep(0.5)
        assert all(s is not None for s in shots), "chromium wrote no screenshot"
        assert shots[0].std() > 10  # not a blank page
        assert np.abs(shots[0].astype(int) - shots[1].astype(int)).mean() > 0.5
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out  # 128 + SIGINT
    report = json.loads(next((tmp_path / "logs").rglob("realtime.json")).read_text())
    assert report["interrupted"] and report["pipeline"]["frames_written"] > 0
