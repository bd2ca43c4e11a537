"""optuna-dashboard on a sweep's journal (`make optuna-dashboard STUDY=<sweep dir>`): the server
lists the study, and headless Chromium renders it (skipped without a chromium binary)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("optuna_dashboard")

BIN = Path(sys.executable).parent


def chromium() -> str | None:
    names = ("chromium", "chromium-browser", "google-chrome")
    return next((shutil.which(b) for b in names if shutil.which(b)), None)


@pytest.fixture
def dashboard(tmp_path):
    """A 5-trial study in <sweep>/optuna.journal, as the sweeper writes it, and the dashboard on it."""
    from rtseg.tracking.optuna_study import open_storage

    sweep = tmp_path / "sweep"
    study = optuna.create_study(
        storage=open_storage(sweep / "optuna.journal"),
        study_name="rtseg_synthetic",
        direction="maximize",
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(
        lambda t: -((t.suggest_float("module.optimizer.lr", 1e-4, 1e-2, log=True) - 3e-3) ** 2),
        n_trials=5,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            str(BIN / "optuna-dashboard"),
            str(sweep / "optuna.journal"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/studies", timeout=5) as r:
                studies = json.loads(r.read())
            break
        except OSError:
            assert proc.poll() is None, "optuna-dashboard ended"
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("optuna-dashboard never answered")
    try:
        yield url, studies
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.timeout(300)
def test_dashboard_lists_the_sweeps_study(dashboard):
    _, studies = dashboard
    (study,) = studies["study_summaries"]
    assert study["study_name"] == "rtseg_synthetic"


@pytest.mark.timeout(300)
@pytest.mark.skipif(chromium() is None, reason="no chromium binary (apt-get install chromium)")
def test_dashboard_renders_in_headless_chromium(dashboard, tmp_path):
    import cv2

    url, studies = dashboard
    study_id = studies["study_summaries"][0]["study_id"]
    shot = tmp_path / "dashboard.png"
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,800",
            "--virtual-time-budget=15000",
            f"--screenshot={shot}",
            f"{url}/dashboard/studies/{study_id}",
        ],
        capture_output=True,
        timeout=120,
    )
    image = cv2.imread(str(shot))
    assert image is not None, "chromium wrote no screenshot"
    assert image.std() > 10  # the page drew something: not a blank white page
