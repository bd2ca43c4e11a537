"""Credentials in source URLs are redacted everywhere the project prints or stores a source: the
console, errors, realtime.log, realtime.json, realtime.csv and the Hydra config copies."""

from __future__ import annotations

import json
import logging

from rtseg.utils.redact import RedactFilter, redact

from ..realtime.helpers import StallingMjpegServer
from .conftest import run_cli

SECRETS = ("s3cret", "T0KEN", "hunter2", "k3y")


def test_redact_hides_passwords_and_secret_query_values():
    assert redact("rtsp://admin:s3cret@host/x?token=T0KEN") == "rtsp://admin:***@host/x?token=***"
    assert redact("http://h/p?user=a&pass=b&k=v") == "http://h/p?user=***&pass=***&k=v"
    assert redact("s?password=x&api_key=y&Key=z&keyframe=3") == (
        "s?password=***&api_key=***&Key=***&keyframe=3"
    )
    assert redact("https://T0KEN@github.com/x") == "https://***@github.com/x"
    assert (
        redact("cannot open http://h/?token=T: no such")
        == "cannot open http://h/?token=***: no such"
    )
    for harmless in ("/data/video.mp4", "http://h/stream?k=v&x=1", "a@b.c", "synthetic"):
        assert redact(harmless) == harmless


def test_log_records_are_redacted():
    record = logging.LogRecord(
        "rtseg", logging.INFO, __file__, 1, "source: %s", ("rtsp://u:s3cret@h/",), None
    )
    RedactFilter().filter(record)
    assert record.getMessage() == "source: rtsp://u:***@h/"


def test_a_source_with_credentials_leaves_no_secret_anywhere(tmp_path, tiny_ckpt):
    server = StallingMjpegServer(frames=8)
    host = server.url("/stream?token=T0KEN&k=v&password=hunter2&api_key=k3y")
    url = host.replace("http://", "http://admin:s3cret@")
    run_dir = tmp_path / "run"
    try:
        proc = run_cli(
            "rtseg.realtime.cli",
            f"source='{url}'",
            f"checkpoint={tiny_ckpt}",
            "backend=eager",
            "threads=1",
            "sink=none",
            "max_frames=4",
            "progress.log_every_s=0.1",
            f"hydra.run.dir={run_dir}",
            env={"RTSEG_LOG_DIR": str(tmp_path / "logs")},
        )
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    assert (
        server.paths[0] == "/stream?token=T0KEN&k=v&password=hunter2&api_key=k3y"
    )  # sent as given
    printed = proc.stdout + proc.stderr
    stored = {p.name: p.read_text() for p in run_dir.rglob("*") if p.is_file()}
    assert {"realtime.json", "realtime.csv", "realtime.log", "config.yaml", "hydra.yaml"} <= set(
        stored
    )
    for secret in SECRETS:
        assert secret not in printed, printed
        leaks = [name for name, text in stored.items() if secret in text]
        assert not leaks, (secret, leaks)
    report = json.loads(stored["realtime.json"])
    assert report["source"] == redact(url) and "admin:***@" in report["source"]
    assert report["config"]["source"] == report["source"]
    assert "admin:***@" in stored["realtime.log"] and "admin:***@" in stored["overrides.yaml"]
