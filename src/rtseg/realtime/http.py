"""``sink=http``: the overlaid video as a live MJPEG stream plus a small page, on a local port.

Standard library only (``ThreadingHTTPServer``): one thread per client. The sink keeps only the
latest frame; each client thread encodes (once per frame, shared by all viewers) and sends the
newest frame it has not sent yet, so a slow client skips frames (counted) and never stalls the
pipeline, whose sink stage just swaps a reference and encodes nothing while no one watches.

Routes: ``/`` the page (video, class legend, stats polled from ``/stats.json``), ``/stream`` the
MJPEG stream (``multipart/x-mixed-replace``), ``/frame.jpg`` the latest frame, ``/stats.json``.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from rtseg.errors import SinkError
from rtseg.realtime.sinks import Sink

log = logging.getLogger("rtseg.realtime")

BOUNDARY = "rtsegframe"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>rtseg realtime</title>
<style>
body {{ font-family: sans-serif; background: #111; color: #eee; margin: 16px; }}
main {{ display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }}
img#video {{ max-width: 100%; background: #000; }}
ul {{ list-style: none; padding: 0; margin: 0; }}
li {{ margin: 2px 0; }}
.swatch {{ display: inline-block; width: 14px; height: 14px; margin-right: 6px;
          vertical-align: middle; border: 1px solid #555; }}
table td {{ padding: 1px 8px 1px 0; }}
</style></head>
<body>
<h3>rtseg realtime</h3>
<main>
<img id="video" src="/stream" alt="live segmentation">
<section>
<table id="stats"><tr><td>waiting for frames...</td></tr></table>
<h4>classes</h4>
<ul>{legend}</ul>
</section>
</main>
<script>
const rows = [["fps", "fps", 1], ["latency (ms)", "latency_ms", 0], ["frames", "frames_written", 0],
  ["dropped", "frames_dropped", 0], ["skipped by this page's stream", "stream_skipped", 0],
  ["viewers", "clients", 0]];
async function poll() {{
  try {{
    const s = await (await fetch("/stats.json", {{cache: "no-store"}})).json();
    document.getElementById("stats").innerHTML = rows.map(([label, key, digits]) =>
      `<tr><td>${{label}}</td><td>${{s[key] == null ? "-" : Number(s[key]).toFixed(digits)}}</td></tr>`
    ).join("") + (s.running ? "" : "<tr><td>stream ended</td></tr>");
  }} catch (e) {{
    document.getElementById("stats").innerHTML = "<tr><td>server gone</td></tr>";
  }}
}}
setInterval(poll, 500); poll();
</script>
</body></html>
"""


def legend_html(legend: list[tuple[str, list[int]]]) -> str:
    return "".join(
        f'<li><span class="swatch" style="background: rgb({r},{g},{b})"></span>{html.escape(name)}</li>'
        for name, (r, g, b) in legend
    )


def check_port(host: str, port: int) -> None:
    """Bind and release ``host:port`` as the server will: a port already in use (or a host that is
    not this machine's) is one line before the model loads (tens of seconds), not after."""
    if int(port) == 0:  # any free port: nothing to check
        return
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
            s.bind((host, int(port)))
    except OSError as e:
        raise SinkError(
            f"sink=http cannot listen on {host}:{port}: {e.strerror or e}"
            " (choose another with http.port=...)"
        ) from None


class HttpSink(Sink):
    """Serves the frames written to it; ``close()`` ends the streams and stops the server."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        jpeg_quality: int = 80,
        legend: list[tuple[str, list[int]]] | None = None,
        stats: Callable[[], dict] | None = None,
    ):
        self.quality = int(jpeg_quality)
        self.stats_fn = stats or dict
        self.page = PAGE.format(legend=legend_html(legend or [])).encode()
        self.cond = threading.Condition()
        self.frame: np.ndarray | None = None  # the latest overlaid frame, encoded only when asked
        self._jpeg: tuple[int, bytes] | None = None  # (seq, JPEG) of the last frame encoded
        self.seq = -1  # number of the latest frame (counts written frames)
        self.running = True
        self.clients = 0
        self.skipped = 0  # frames some client never got because it was slower than the pipeline
        try:
            self.server = ThreadingHTTPServer((host, int(port)), self._handler())
        except OSError as e:
            raise SinkError(
                f"sink=http cannot listen on {host}:{port}: {e.strerror or e}"
                " (choose another with http.port=...)"
            ) from e
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()
        log.info("serving the live view at %s (Ctrl-C stops)", self.url)

    # ------------------------------------------------------------------ sink side

    def write(self, index: int, frame: np.ndarray, labels: np.ndarray) -> None:
        with self.cond:  # a reference swap: no encoding in the pipeline, nor with no one watching
            self.frame = frame
            self.seq += 1
            self.cond.notify_all()
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        with self.cond:
            self.running = False
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ client side

    def next_frame(self, last: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """The newest frame after ``last`` (waits up to ``timeout``); (last, None) when there is none."""
        with self.cond:
            self.cond.wait_for(lambda: self.seq > last or not self.running, timeout)
            if self.seq <= last or self.frame is None:
                return last, None
            if last >= 0:
                self.skipped += self.seq - last - 1
            seq, frame, cached = self.seq, self.frame, self._jpeg
        if cached is not None and cached[0] == seq:  # another viewer encoded this frame already
            return seq, cached[1]
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return last, None
        jpeg = buf.tobytes()
        with self.cond:
            if self._jpeg is None or self._jpeg[0] < seq:
                self._jpeg = (seq, jpeg)
        return seq, jpeg

    def stats(self) -> dict:
        with self.cond:
            own = {"stream_skipped": self.skipped, "clients": self.clients}
        return {**self.stats_fn(), **own, "running": self.running}

    def _handler(self):
        sink = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a client that stops reading is dropped after this, not kept forever

            def log_message(self, fmt, *args):
                log.debug("http %s: " + fmt, self.client_address[0], *args)

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self):  # noqa: N802 - health checks use HEAD (issue 36: it answered 501)
                self.do_GET()

            def do_GET(self):  # noqa: N802 - http.server's naming
                route = self.path.split("?", 1)[0]
                if route in ("/", "/index.html"):
                    self._send(sink.page, "text/html; charset=utf-8")
                elif route == "/stats.json":
                    self._send(json.dumps(sink.stats()).encode(), "application/json")
                elif route == "/frame.jpg":
                    _, jpeg = sink.next_frame(-1, timeout=5.0)
                    if jpeg is None:
                        self.send_error(503, "no frame yet")
                    else:
                        self._send(jpeg, "image/jpeg")
                elif route == "/stream":
                    self._stream()
                else:
                    self.send_error(404)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command == "HEAD":
                    return
                with sink.cond:
                    sink.clients += 1
                last = -1
                try:
                    while sink.running:
                        last, jpeg = sink.next_frame(last)
                        if jpeg is None:
                            continue
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    pass  # the viewer went away
                finally:
                    with sink.cond:
                        sink.clients -= 1

        return Handler
