"""Credentials in source URLs are redacted everywhere the project prints or stores a source: the
console, errors, realtime.log, realtime.json, realtime.csv and the Hydra config copies."""

from __future__ import annotations

import json
import logging

import pytest

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


@pytest.mark.parametrize(
    "given, shown",
    [
        # FFmpeg splits the user info at the LAST '@' before the host: the whole password goes
        ("rtsp://admin:p@ssAT9@127.0.0.1:1/stream", "rtsp://admin:***@127.0.0.1:1/stream"),
        ("rtsp://admin:a@b@c@cam/x?k=v", "rtsp://admin:***@cam/x?k=v"),
        # Hydra's override files and multirun lines escape ':' as '\:'
        (
            r"source=rtsp\://admin\:MULTIpw1@127.0.0.1\:1/s",
            r"source=rtsp\://admin\:***@127.0.0.1\:1/s",
        ),
        (r"source=rtsp://admin\:pw@cam/x", r"source=rtsp://admin\:***@cam/x"),
        # two URLs in one line, a quoted one
        ("a rtsp://u:p1@h/x b http://v:p2@w/ c", "a rtsp://u:***@h/x b http://v:***@w/ c"),
        ("source='rtsp://a:p3@c/d'", "source='rtsp://a:***@c/d'"),
    ],
)
def test_redaction_parses_the_url_as_ffmpeg_and_hydra_write_it(given, shown):
    assert redact(given) == shown


def test_a_multirun_leaves_no_secret_in_any_file_or_line(tmp_path):
    """Multirun: the [HYDRA] #0 console line and the job's overrides.yaml / hydra.yaml hold the
    overrides with ':' escaped; a password with '@' in a plain run. Every file the runs leave and
    everything printed is searched."""
    sweep, run = tmp_path / "sweep", tmp_path / "run"
    common = ["checkpoint=camvid", "backend=eager", "threads=1", "reconnect.open_timeout_s=2"]
    multi = run_cli(
        "rtseg.realtime.cli", "-m", "source=rtsp://admin:MULTIpw1@127.0.0.1:1/s", *common,
        f"hydra.sweep.dir={sweep}", env={"RTSEG_LOG_DIR": str(tmp_path / "logs")},
    )  # fmt: skip
    single = run_cli(
        "rtseg.realtime.cli", "source=rtsp://admin:p@ssAT9@127.0.0.1:1/stream", *common,
        f"hydra.run.dir={run}", env={"RTSEG_LOG_DIR": str(tmp_path / "logs")},
    )  # fmt: skip
    assert "#0 : source=" in multi.stdout + multi.stderr  # the line that leaked
    for proc, secret in ((multi, "MULTIpw1"), (single, "ssAT9")):
        assert proc.returncode == 2 and "cannot open source" in proc.stderr, proc.stderr
        assert secret not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "overrides.yaml" for p in files) and any(
        p.name == "hydra.yaml" for p in files
    )
    for path in files:
        text = path.read_text(errors="replace")
        assert "MULTIpw1" not in text and "ssAT9" not in text, path


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
