"""The ten cases the sweep found handled well, kept that way: each builds its bad input in tmp_path.

A crafted checkpoint runs no code anywhere; export never overwrites; truncated JPEGs and unknown mask
colours are named; an unreachable W&B server costs nothing; sink=http survives 20 viewers, path
traversal and long URLs; Ctrl-C then rerun resumes with metrics.csv intact; a truncated safetensors
file is one line.
"""

from __future__ import annotations

import csv
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

import rtseg
from rtseg.bench.cli import load_subject
from rtseg.checkpoints import zoo
from rtseg.data.folder import folder
from rtseg.errors import CheckpointError, DataError, ExportError
from rtseg.infer.export import run_export
from rtseg.realtime.cli import realtime
from rtseg.realtime.http import HttpSink
from rtseg.training.eval import evaluate
from rtseg.training.train import train
from rtseg.utils.config import compose_config

from ..conftest import FAST_TRAIN, TINY
from ..realtime.test_http import feed, read_jpegs


def _cfg(name, tmp_path, *overrides):
    return compose_config(
        name,
        [f"paths.output_dir={tmp_path / name}", f"paths.log_dir={tmp_path / 'logs'}", *overrides],
    )


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what an attacker's pickle does: call a global at load time
        return (open, (str(self.marker), "w"))


def test_a_crafted_checkpoint_runs_no_code_anywhere(tmp_path):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"meta": Payload(marker)}}, evil)
    spec = f"checkpoint={evil}"
    attempts = [
        lambda: rtseg.load(str(evil)),
        lambda: evaluate(_cfg("eval", tmp_path, spec)),
        lambda: load_subject(_cfg("benchmark", tmp_path, spec)),
        lambda: run_export(_cfg("export", tmp_path, spec, f"out_dir={tmp_path / 'x'}")),
        lambda: realtime(_cfg("realtime", tmp_path, spec, "backend=eager", "sink=none")),
    ]
    for attempt in attempts:
        with pytest.raises(CheckpointError, match="refused checkpoint .*never runs code"):
            attempt()
    assert not marker.exists(), "the checkpoint's code ran"


def test_export_never_overwrites(tmp_path, tiny_ckpt):
    pytest.importorskip("onnx")
    out = tmp_path / "out"
    args = [f"checkpoint={tiny_ckpt}", f"out_dir={out}", "name=m"]
    path, sidecar = run_export(_cfg("export", tmp_path, *args))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ExportError, match="already exists: rtseg-export never overwrites"):
        run_export(_cfg("export", tmp_path, *args))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _folder_dataset(root, count=6, rgb_masks=False):
    rng = np.random.default_rng(0)
    palette = np.array([[128, 64, 128], [70, 70, 70], [0, 0, 142]], np.uint8)
    for n in range(count):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"f{n}.jpg", quality=95)
        mask = np.kron(rng.integers(0, 3, (4, 6)), np.ones((8, 8), int)).astype(np.uint8)
        Image.fromarray(palette[mask] if rgb_masks else mask).save(root / "masks" / f"f{n}.png")
    return root, palette.tolist()


def _split_holding(root, victim, **kw):
    return next(
        s
        for s in ("train", "val")
        if any(victim in pair for pair in folder(str(root), 3, s, verify=False, **kw).pairs)
    )


def test_a_truncated_jpeg_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RTSEG_CACHE_DIR", str(tmp_path / "cache"))
    root, _ = _folder_dataset(tmp_path / "mine")
    victim = root / "images" / "f3.jpg"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(DataError) as err:
        folder(str(root), 3, _split_holding(root, victim))
    assert f"cannot read image {victim}" in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_mask_colour_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RTSEG_CACHE_DIR", str(tmp_path / "cache"))
    root, palette = _folder_dataset(tmp_path / "mine", rgb_masks=True)
    victim = root / "masks" / "f2.png"
    mask = np.array(Image.open(victim))
    mask[5, 17] = [1, 2, 3]
    Image.fromarray(mask).save(victim)
    split = _split_holding(root, victim, palette=palette)
    with pytest.raises(DataError) as err:
        folder(str(root), 3, split, palette=palette)
    assert str(err.value) == (
        f"mask {victim} has colour [1, 2, 3] at pixel (x=17, y=5) that is not in data.palette "
        "or data.ignore_colors"
    )


def test_an_unreachable_wandb_server_costs_nothing(monkeypatch):
    from rtseg.tracking.wandb import server_unreachable

    with socket.socket() as closed:  # a port that refuses: nothing listens there any more
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    assert f"127.0.0.1:{port}" in server_unreachable(timeout_s=1.0)
    assert time.perf_counter() - t0 < 2.0


@pytest.fixture
def served():
    sink = HttpSink(port=0, legend=[("road", [128, 64, 128])], stats=dict)
    stop = threading.Event()
    thread = threading.Thread(target=feed, args=(sink, stop), daemon=True)
    thread.start()
    yield sink
    stop.set()
    thread.join()
    sink.close()


def test_sink_http_survives_20_viewers(served):
    got, errors = [], []

    def view():
        try:
            got.append(len(read_jpegs(served.url + "stream", 3, timeout=30)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    viewers = [threading.Thread(target=view) for _ in range(20)]
    for v in viewers:
        v.start()
    for v in viewers:
        v.join(60)
    assert not errors and got == [3] * 20
    assert urllib.request.urlopen(served.url + "stats.json", timeout=5).status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
    ],
)
def test_sink_http_serves_no_file_by_path_traversal(served, path):
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 404") and b"root:" not in answer


def test_sink_http_answers_a_long_url_and_keeps_serving(served):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(served.url + "x" * 100_000, timeout=10)
    assert err.value.code in (404, 414)
    stats = json.loads(urllib.request.urlopen(served.url + "stats.json", timeout=5).read())
    assert stats["running"] is True


class InterruptAt(L.Callback):
    """Ctrl-C at the start of a given epoch (Lightning's graceful KeyboardInterrupt)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def _rows(path) -> list[dict]:
    """metrics.csv rows without their empty cells (a resumed run may add columns)."""
    return [{k: v for k, v in r.items() if v} for r in csv.DictReader(path.open())]


def test_ctrl_c_then_rerun_resumes_with_metrics_csv_intact(compose_cfg, tmp_path):
    base = [*TINY, *FAST_TRAIN, "trainer.max_epochs=3", "data.lengths.train=16"]
    stop = [f"+callbacks.interrupt._target_={__name__}.InterruptAt", "+callbacks.interrupt.epoch=2"]
    with pytest.raises(SystemExit) as stopped:
        train(compose_cfg(overrides=base + stop))
    assert stopped.value.code == 130  # 128 + SIGINT, as rtseg-realtime (Lightning's own is 1)
    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    first = _rows(run / "metrics.csv")
    train(compose_cfg(overrides=base))
    after = _rows(run / "metrics.csv")
    assert first and all(
        row in after for row in first
    )  # every logged value kept (columns may grow)
    assert {r["epoch"] for r in after if "val/miou" in r} >= {"0", "1", "2"}
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_a_truncated_safetensors_file_is_one_line(tmp_path, monkeypatch):
    shutil.copy(zoo.ZOO_DIR / "camvid.json", tmp_path / "camvid.json")
    data = (zoo.ZOO_DIR / "camvid.safetensors").read_bytes()
    (tmp_path / "camvid.safetensors").write_bytes(data[: len(data) // 3])
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="sha256 .* does not match its card"):
        rtseg.load("camvid")
    card = json.loads((tmp_path / "camvid.json").read_text())  # even when the card agrees with it
    card["sha256"] = None
    (tmp_path / "camvid.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as err:
        rtseg.load("camvid")
    assert "\n" not in str(err.value)
