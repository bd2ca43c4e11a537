"""Soak rtseg-realtime under a memory checker: live sources, stops and restarts, a stream that drops.

Issue 24: the test suite crashed on heap corruption (an OpenVINO model left the thread on a freed
signal stack; captures were opened, read and released from different threads). This drives the
product the way a long session does and records, per run: the exit status (130 after Ctrl-C, 0 at
a file's end), what the checker reported, frames, reconnects, and the process's RSS after warm-up
and at the end.

Phases, each run stopped with SIGINT after ``--run-s`` seconds (or ending by itself) and restarted:
  live     source=synthetic, a live camera-like scene (drop=latest)
  stream   an MJPEG-over-HTTP stream of the clip that drops its connection every ``--drop-every-s``
           seconds, so the source reconnects (sink=file: the mp4 is finalised at every stop)
  file     the clip played live (``live=true``): paced at 25 fps, ends at its end

    .venv/bin/python experiments/realtime_soak/soak.py --minutes 6 --checker malloc \
        --video ../shared/data/video/solidWhiteRight.mp4

``--checker malloc``: glibc's malloc debugging (``LD_PRELOAD=libc_malloc_debug.so.0
MALLOC_CHECK_=3``: a corrupted heap aborts with a message); ``valgrind``: memcheck (much slower:
minutes give few frames; the log is scanned for invalid reads/writes outside the dynamic loader).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent
MALLOC_DEBUG = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"
# what glibc's checker, the kernel and valgrind say when memory goes wrong
BAD = re.compile(
    r"malloc\(\)|free\(\)|corrupted|double free|Segmentation fault|Fatal Python error|"
    r"Invalid (read|write|free)|Mismatched free"
)


class MjpegStream:
    """Frames of a video, looped, as MJPEG over HTTP at ``fps``; each connection is cut after
    ``drop_every_s`` seconds (the stream 'drops' and the client must reconnect)."""

    def __init__(self, video: Path, fps: float = 25.0, drop_every_s: float = 8.0):
        self.frames = _frames(video)
        self.fps, self.drop_every_s = fps, drop_every_s
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
            )
            t0, i = time.monotonic(), 0
            while not self.closed.is_set() and time.monotonic() - t0 < self.drop_every_s:
                jpeg = self.frames[i % len(self.frames)]
                conn.sendall(
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                    + jpeg
                    + b"\r\n"
                )
                i += 1
                time.sleep(max(0.0, t0 + i / self.fps - time.monotonic()))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


def _frames(video: Path, limit: int = 250) -> list[bytes]:
    cap = cv2.VideoCapture(str(video))
    out = []
    try:
        while len(out) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            out.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    finally:
        cap.release()
    if not out:
        raise SystemExit(f"error: {video}: no frames could be read")
    return out


def synthetic_clip(path: Path, frames: int = 150) -> Path:
    """A road-like clip when no video is given (moving bands and a 'car')."""
    w, h = 640, 360
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    try:
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[: h // 3] = (200, 160, 120)
            img[h // 2 :] = (90, 90, 90)
            x = (i * 7) % w
            cv2.rectangle(img, (x, h // 2), (x + 80, h // 2 + 50), (30, 30, 200), -1)
            writer.write(img)
    finally:
        writer.release()
    return path


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_once(args, phase: str, source_args: list[str], run_dir: Path, env: dict) -> dict:
    cmd = [
        str(BIN / "rtseg-realtime"),
        f"checkpoint={args.checkpoint}",
        f"backend={args.backend}",
        f"threads={args.threads}",
        f"hydra.run.dir={run_dir}",
        "progress.log_every_s=5",
        *source_args,
    ]
    if args.checker == "valgrind":
        cmd = [
            "valgrind",
            "--error-limit=no",
            "--num-callers=30",
            f"--log-file={run_dir}.valgrind.log",
            sys.executable,
            *cmd,
        ]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    rss_start = rss_end = None
    stopped = False
    while proc.poll() is None:
        elapsed = time.monotonic() - t0
        if rss_start is None and any("pipeline" in ln or "progress:" in ln for ln in lines):
            rss_start = rss_mb(proc.pid)  # after model load and warm-up: the stream is running
        if elapsed >= args.run_s and not stopped:
            rss_end = rss_mb(proc.pid)
            proc.send_signal(signal.SIGINT)
            stopped = True
        if elapsed >= args.run_s + 120:  # never answered the stop
            proc.kill()
        time.sleep(0.5)
    reader.join(5)
    text = "".join(lines)
    if args.checker == "valgrind":
        log = Path(f"{run_dir}.valgrind.log")
        text += _valgrind_errors(log.read_text() if log.is_file() else "")
    report = {}
    if (run_dir / "realtime.json").is_file():
        report = json.loads((run_dir / "realtime.json").read_text())
    pipe = report.get("pipeline") or {}
    reports = sorted({m.group(0) for m in BAD.finditer(text)})
    # realtime.json is written once the stream is done and measured: a report after it came at exit
    when = ("at exit" if report else "during the run") if reports else ""
    return {
        "phase": phase,
        "seconds": round(time.monotonic() - t0, 1),
        "rc": proc.returncode,
        "stopped_by": "SIGINT" if stopped else "end",
        "frames": pipe.get("frames_written"),
        "dropped": pipe.get("frames_dropped"),
        "reconnects": pipe.get("reconnects"),
        "rss_start_mb": round(rss_start, 1) if rss_start else None,
        "rss_end_mb": round(rss_end, 1) if rss_end else None,
        "checker_reports": "; ".join(reports) or "none",
        "when": when,
        "backend": report.get("backend"),
    }


def _valgrind_errors(log: str) -> str:
    """Invalid accesses outside the dynamic loader's known false positives (dl-load strncmp)."""
    out = []
    blocks = re.split(r"\n==\d+== \n", log)
    for b in blocks:
        if re.search(r"Invalid (read|write|free)|Mismatched free", b) and "dl-load.c" not in b:
            out.append(b)
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--minutes", type=float, default=6.0, help="total soak time, split over the phases"
    )
    p.add_argument("--run-s", type=float, default=45.0, help="seconds per run before Ctrl-C")
    p.add_argument("--drop-every-s", type=float, default=8.0)
    p.add_argument("--video", type=Path, default=None, help="a clip (default: a synthetic one)")
    p.add_argument("--checkpoint", default="camvid")
    p.add_argument("--backend", default="openvino")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checker", choices=["malloc", "valgrind", "none"], default="malloc")
    p.add_argument("--phases", nargs="+", default=["live", "stream", "file"])
    p.add_argument("--out", type=Path, default=HERE / "soak.csv")
    args = p.parse_args()

    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONUNBUFFERED": "1"}
    if args.checker == "malloc":
        if not Path(MALLOC_DEBUG).is_file():
            raise SystemExit(f"error: --checker malloc needs {MALLOC_DEBUG} (glibc >= 2.34)")
        env.update(LD_PRELOAD=MALLOC_DEBUG, MALLOC_CHECK_="3")
    work = Path(tempfile.mkdtemp(prefix="rtseg-soak-"))
    video = args.video or synthetic_clip(work / "clip.mp4")
    stream = MjpegStream(video, drop_every_s=args.drop_every_s) if "stream" in args.phases else None
    deadline = time.monotonic() + args.minutes * 60
    rows: list[dict] = []
    n = 0
    try:
        while time.monotonic() < deadline:
            for phase in args.phases:
                if time.monotonic() >= deadline:
                    break
                run_dir = work / f"{n:02d}-{phase}"
                if phase == "live":
                    src = [
                        "source=synthetic",
                        "synthetic.live=true",
                        "synthetic.frames=1000000",
                        "sink=none",
                    ]
                elif phase == "stream":
                    src = [f"source={stream.url}", "sink=file", f"output={run_dir}/out.mp4"]
                else:
                    src = [f"source={video}", "live=true", "sink=none"]
                row = run_once(args, phase, src, run_dir, env)
                rows.append(row)
                print(json.dumps(row), flush=True)
                n += 1
    finally:
        if stream:
            stream.close()
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    bad = [r for r in rows if r["checker_reports"] != "none" or r["rc"] not in (0, 130)]
    print(
        f"{len(rows)} runs, {len(bad)} with a crash, a bad exit status or a checker report -> {args.out}"
    )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
