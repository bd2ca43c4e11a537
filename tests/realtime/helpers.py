"""Helpers for the realtime tests: frame-index encoding, video reading."""

from __future__ import annotations

import cv2
import numpy as np

FRAME_H, FRAME_W = 64, 96
BITS = 8  # frame index encoded as 8 black/white blocks along the bottom of each test frame


def encode_index(frame: np.ndarray, index: int) -> None:
    h, w = frame.shape[:2]
    bw = w // BITS
    for b in range(BITS):
        frame[h - 16 :, b * bw : (b + 1) * bw] = 255 if (index >> b) & 1 else 0


def decode_index(frame: np.ndarray) -> int:
    h, w = frame.shape[:2]
    bw = w // BITS
    return sum(
        1 << b
        for b in range(BITS)
        if frame[h - 12 : h - 4, b * bw + 3 : (b + 1) * bw - 3].mean() > 127
    )


def video_info(path) -> tuple[int, int, int, list[np.ndarray]]:
    """(reported frame count, width, height, the frames actually decoded)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return count, w, h, frames


class StallingMjpegServer:
    """A local MJPEG-over-HTTP "camera" that sends ``frames`` frames, then stalls (keeps the socket
    open, sends nothing). ``frames=0``: accepts and never answers at all. Records request paths."""

    def __init__(self, frames: int = 5, size: tuple[int, int] = (FRAME_H, FRAME_W)):
        import socket
        import threading

        self.frames, self.size, self.paths = frames, size, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str = "/stream?k=v&x=1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            request = conn.recv(65536).decode(errors="replace")
            self.paths.append(request.split(" ")[1] if " " in request else request)
            if not self.frames:
                continue  # never answer
            rng = np.random.default_rng(0)
            conn.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
            )
            for _ in range(self.frames):
                img = rng.integers(0, 255, (*self.size, 3), dtype=np.uint8)
                jpeg = cv2.imencode(".jpg", img)[1].tobytes()
                conn.sendall(
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                    + jpeg
                    + b"\r\n"
                )
            # then stall: the connection stays open and silent until close()

    def close(self) -> None:
        self.closed.set()
        for c in self.conns:
            c.close()
        self.sock.close()
