"""What the pipeline is worth, measured in the same run: model-only fps and a plain sequential loop.

The sequential loop is what MMSegmentation's video demo does: read -> preprocess -> infer ->
overlay -> write, one frame at a time in one thread, with the same backend, input size, overlay
and sink type. The pipeline's ratio to it is the number the issue's goal (>= 1.3x) is about.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from rtseg.infer.frames import Preprocess
from rtseg.infer.temporal import FilterConfig, make_filter
from rtseg.realtime.model import Infer, RealtimeModel
from rtseg.realtime.overlay import Overlay
from rtseg.realtime.pipeline import STAGES
from rtseg.realtime.sinks import FolderSink, NullSink, Sink, VideoFileSink
from rtseg.realtime.sources import Source
from rtseg.timing import time_fn
from rtseg.utils.config import to_container
from rtseg.utils.paths import write_atomic

log = logging.getLogger("rtseg.realtime")


def model_only(
    infer: Infer, size: tuple[int, int], batch: int = 1, min_seconds: float = 1.0
) -> dict:
    """Backend alone on a fixed tensor (no I/O, no drawing): the ceiling for the pipeline."""
    x = [np.random.default_rng(0).standard_normal((3, *size)).astype(np.float32)] * batch
    t = time_fn(lambda: infer(x), warmup=2, min_runs=5, min_seconds=min_seconds)
    return {
        "batch": batch,
        "latency_ms": t["median_ms"],
        "p90_ms": t["p90_ms"],
        "fps": 1e3 * batch / t["median_ms"],
    }


def sequential(
    source: Source,
    preprocess: Preprocess,
    infer: Infer,
    overlay: Overlay,
    sink: Sink,
    hud_label: str = "",
    temporal=None,
) -> dict:
    """One thread, one frame at a time, everything in order: the baseline the pipeline must beat.

    ``temporal``: a fresh temporal filter when the pipeline ran one (the same work per frame)."""
    n = 0
    t0 = time.perf_counter()
    last = t0
    try:
        for frame in source:
            post = temporal and temporal.post([temporal.cue(frame.image)])
            labels = infer([preprocess(frame.image)], post)[0]
            now = time.perf_counter()
            hud = [
                f"{1.0 / max(now - last, 1e-9):5.1f} fps  {(now - frame.t_capture) * 1e3:4.0f} ms",
                hud_label,
            ]
            last = now
            sink.write(
                frame.index, overlay.draw(frame.image, labels, [h for h in hud if h]), labels
            )
            n += 1
    finally:
        sink.close()
        source.close()
    wall = time.perf_counter() - t0
    return {"frames": n, "wall_s": wall, "fps": n / wall if wall > 0 else 0.0}


def in_thread(fn, *args):
    """Run ``fn`` in a fresh thread, as the pipeline runs inference, and return its result.

    Threading is not neutral: on a loaded 2-core machine torch's OpenMP team called from the main
    thread was measured 5-10x slower than from a worker thread. The baselines run where the
    pipeline's inference runs, so the ratio compares pipelining and nothing else.
    """
    box: dict = {}

    def body():
        try:
            box["result"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=body, name="rtseg-baseline")
    t.start()
    while t.is_alive():
        t.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["result"]


def warm_up(infer: Infer, size: tuple[int, int], max_batch: int) -> None:
    """First calls allocate and pick kernels: keep them out of every measurement."""
    x = np.zeros((3, *size), np.float32)
    with torch.inference_mode():
        for b in sorted({1, max_batch}):
            for _ in range(2):
                infer([x] * b)


def summary_row(info: dict) -> dict:
    """One flat row (the CSV and the table): model, backend, size, the three fps and the ratios."""
    stats, bench = info["pipeline"], info.get("benchmark") or {}
    e2e = stats["latency_ms"]["end_to_end"]
    seq = (bench.get("sequential") or {}).get("fps")
    mod = (bench.get("model_only") or {}).get("fps")
    return {
        "model": info["model"],
        "checkpoint": info["checkpoint"],
        "backend": info["backend"],
        "precision": info["precision"],
        "input_size": "x".join(map(str, info["input_size"])),
        "source": info["source"],
        "source_size": "x".join(map(str, info.get("source_size") or [])),
        "frames": stats["frames_written"],
        "max_batch": info["max_batch"],
        "workers": info["workers"],
        "drop": info["drop"],
        "model_only_fps": mod,
        "sequential_fps": seq,
        "pipeline_fps": stats["fps"],
        "ratio_vs_sequential": stats["fps"] / seq if seq else None,
        "ratio_vs_model_only": stats["fps"] / mod if mod else None,
        "latency_p50_ms": e2e["median_ms"],
        "latency_p90_ms": e2e["p90_ms"],
        "dropped": stats["frames_dropped"],
        "corrupt": stats["frames_corrupt"],
        **video_quality_row(info),
    }


def video_quality_row(info: dict) -> dict:
    """The temporal filter, TC and change rate, stream mIoU and stream agreement (None: not measured)."""
    quality = info.get("stream_quality") or {}
    miou = quality.get("miou") or {}
    agreement = info.get("stream_agreement") or {}
    return {
        "temporal": (info.get("temporal") or {}).get("mode", "none"),
        "tc": quality.get("tc"),
        "change_rate": quality.get("change_rate"),
        "stream_miou": miou.get("miou"),
        "stream_agreement": agreement.get("agreement"),
    }


def write_report(info: dict, run_dir: Path) -> dict:
    """realtime.json (everything) and realtime.csv (one row) in the run folder."""
    row = summary_row(info)
    write_atomic(
        run_dir / "realtime.json", json.dumps({**info, "summary": row}, indent=2, default=str)
    )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    write_atomic(run_dir / "realtime.csv", text.getvalue())
    return row


def print_report(info: dict, row: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v, spec=".1f"):
        return "-" if v is None else format(v, spec)

    def pct(v):
        return fmt(None if v is None else 100 * v, ".2f")

    console = Console()
    table = Table(title="rtseg-realtime")
    table.add_column("")
    table.add_column("value", justify="right")
    rows = [
        ("model", row["model"]),
        ("backend", f"{row['backend']} ({row['precision']})"),
        ("input size", row["input_size"]),
        ("source", f"{row['source']} ({row['source_size']})"),
        ("frames / batch / workers", f"{row['frames']} / {row['max_batch']} / {row['workers']}"),
        ("model-only fps", fmt(row["model_only_fps"])),
        ("sequential fps", fmt(row["sequential_fps"])),
        ("pipeline fps", fmt(row["pipeline_fps"])),
        ("pipeline / sequential", fmt(row["ratio_vs_sequential"], ".2f")),
        ("pipeline / model-only", fmt(row["ratio_vs_model_only"], ".2f")),
        ("latency median / p90 ms", f"{fmt(row['latency_p50_ms'])} / {fmt(row['latency_p90_ms'])}"),
        ("dropped / corrupt", f"{row['dropped']} / {row['corrupt']}"),
        ("temporal filter", row["temporal"]),
    ]
    reason = (info.get("temporal") or {}).get("reason")
    if reason:  # temporal=auto: why this filter (one line in the log too)
        rows.append(("temporal filter: why", reason))
    if row["tc"] is not None:
        rows.append(("TC / change rate %", f"{pct(row['tc'])} / {pct(row['change_rate'])}"))
    if row["stream_miou"] is not None:
        rows.append(("stream mIoU %", pct(row["stream_miou"])))
    if row["stream_agreement"] is not None:
        worst = info["stream_agreement"]["worst_frame"]
        rows.append(
            (
                "agreement with fp32 % (worst frame)",
                f"{pct(row['stream_agreement'])} ({pct(worst)})",
            )
        )
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)
    stages = Table(title=f"per-stage latency, mean batch {info['pipeline']['mean_batch']:.2f}")
    stages.add_column("stage")
    stages.add_column("median ms", justify="right")
    stages.add_column("p90 ms", justify="right")
    for s in STAGES:
        lat = info["pipeline"]["latency_ms"][s]
        stages.add_row(s, fmt(lat["median_ms"], ".2f"), fmt(lat["p90_ms"], ".2f"))
    console.print(stages)


def scratch_sink(cfg, folder: Path, fps: float | None) -> Sink:
    """A sink of the run's kind writing into ``folder`` (file, folder; else none): what a stream run
    only to be timed (the sequential loop, temporal=auto's probe) pays for its output."""
    if cfg.sink == "file":
        return VideoFileSink(folder / "scratch.mp4", fps, **to_container(cfg.video))
    if cfg.sink == "folder":
        return FolderSink(folder / "frames")
    return NullSink()


def measure_baselines(
    cfg,
    model: RealtimeModel,
    source: Source,
    preprocess,
    overlay,
    hud_label,
    frames: int,
    temporal: FilterConfig | None = None,
) -> dict:
    """Model-only fps and the sequential loop over the same source, same backend, same sink type
    (and a fresh temporal filter when the pipeline ran one).

    Both use the backend with ``sequential_threads`` (default: the pipeline's ``threads``, i.e. the
    very same backend object; another value builds a second backend with that thread count).
    """
    threads = cfg.get("sequential_threads") or model.threads
    infer = model.standalone_infer(threads)
    in_thread(warm_up, infer, model.size, 1)
    mod = in_thread(model_only, infer, model.size, 1, float(cfg.get("benchmark_seconds", 1.0)))
    log.info(
        "model only: %.1f fps (%.2f ms per frame, batch 1, threads=%s)",
        mod["fps"],
        mod["latency_ms"],
        threads,
    )
    source = source.reopen()
    source.max_frames = frames
    with tempfile.TemporaryDirectory(prefix="rtseg-seq-") as tmp:
        sink = scratch_sink(cfg, Path(tmp), source.fps)
        fresh = make_filter(temporal, model.size) if temporal else None
        seq = in_thread(sequential, source, preprocess, infer, overlay, sink, hud_label, fresh)
    log.info("sequential loop: %d frames, %.1f fps", seq["frames"], seq["fps"])
    return {"model_only": mod, "sequential": seq, "threads": threads}
