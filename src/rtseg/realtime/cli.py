"""rtseg-realtime: run the best (or a given) model on a video stream, pipelined, with the mask overlaid.

Order of work: open the source (a bad one fails in one line before anything slow), choose and
load the model, build the backend(s), warm up, run the pipeline (Ctrl-C/SIGTERM stop the source
and drain, so the output stays playable), then with ``benchmark=true`` measure model-only and
sequential-loop fps on the same source, and write realtime.json / realtime.csv in the run folder.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from rtseg.infer.frames import Preprocess
from rtseg.realtime.baselines import (
    in_thread,
    model_only,
    print_report,
    sequential,
    warm_up,
    write_report,
)
from rtseg.realtime.model import RealtimeModel
from rtseg.realtime.overlay import Overlay
from rtseg.realtime.pipeline import Pipeline, PipelineConfig
from rtseg.realtime.sinks import FolderSink, NullSink, VideoFileSink, make_sinks
from rtseg.realtime.sources import Source, open_source
from rtseg.utils import (
    CONF_DIR,
    IMAGENET_MEAN,
    IMAGENET_STD,
    output_dir,
    set_threads,
    to_container,
    user_errors_as_one_line,
)

log = logging.getLogger("rtseg.realtime")


def build_source(cfg: DictConfig, max_frames: int | None = None) -> Source:
    return open_source(
        cfg.source,
        max_frames=cfg.get("max_frames") if max_frames is None else max_frames,
        live=cfg.get("live"),
        synthetic=to_container(cfg.synthetic),
        reconnect=to_container(cfg.reconnect),
        folder_fps=cfg.get("folder_fps", 10),
    )


def calibration_frames(cfg: DictConfig, size, mean, std) -> tuple[list, str]:
    """Real frames of the stream itself, preprocessed as the pipeline does, for int8 calibration.

    Every ``stride``-th of the first frames is taken so the set is not one near-identical shot.
    """
    import torch

    n, stride = int(cfg.calibration.frames), int(cfg.calibration.stride)
    source = build_source(cfg, max_frames=n * stride)
    pre = Preprocess(size, mean, std, cfg.interpolation)
    frames = []
    try:
        for i, frame in enumerate(source):
            if frame.image is not None and i % stride == 0:
                frames.append(torch.from_numpy(pre(frame.image))[None])
            if len(frames) >= n:
                break
    finally:
        source.close()
    return frames, f"frames of {source.name} (every {stride}th of the first {n * stride})"


@contextmanager
def stop_on_signals(stop):
    """SIGINT/SIGTERM stop the source instead of killing the process: in-flight frames are written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        log.warning(
            "%s: stopping the source and finishing the frames in flight",
            signal.Signals(signum).name,
        )
        stop()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def realtime(cfg: DictConfig) -> dict:
    set_threads(cfg.get("threads"))
    run_dir = output_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    source = build_source(cfg)  # first: a bad source fails before the slow model loading
    drop = cfg.drop if cfg.drop != "auto" else ("latest" if source.live else "none")
    log.info(
        "source: %s (%s, %s frames, drop=%s)",
        source.name,
        "live" if source.live else "file",
        source.expected_frames or "?",
        drop,
    )

    model = RealtimeModel(
        cfg.checkpoint,
        cfg.paths.log_dir,
        cfg.backend,
        cfg.get("size"),
        cfg.max_batch,
        cfg.get("threads"),
        run_dir / "backend",
        calibration_frames=lambda size, mean, std: calibration_frames(cfg, size, mean, std),
    )
    meta, size, backend, choice = model.meta, model.size, model.backend, model.choice
    mean, std = meta.get("mean") or IMAGENET_MEAN, meta.get("std") or IMAGENET_STD
    preprocess = Preprocess(size, mean, std, cfg.interpolation)
    overlay_cfg = to_container(cfg.overlay)
    overlay = Overlay(meta.get("palette"), meta.get("class_names"), **overlay_cfg)
    pcfg = PipelineConfig(
        drop=drop,
        max_batch=int(cfg.max_batch),
        workers=int(cfg.workers),
        queue_size=int(cfg.queue_size),
    )
    hud_label = f"{backend.name} {backend.precision} {size[0]}x{size[1]}"

    pipeline = None
    sinks = make_sinks(
        cfg.sink,
        cfg.get("output"),
        run_dir,
        source.fps,
        cfg.get("mask_export"),
        on_quit=lambda: pipeline and pipeline.stop(),
    )
    pipeline = Pipeline(source, preprocess, model.make_infer, overlay, sinks, pcfg, hud_label)
    for infer in pipeline.infers:
        warm_up(infer, size, pcfg.max_batch)
    with stop_on_signals(pipeline.stop):
        stats = pipeline.run()
    interrupted = source.stopped or pipeline.source_error is not None
    outputs = [str(s.path) for s in sinks if s.path is not None]
    log.info(
        "pipeline: %d frames in %.1f s = %.1f fps end to end; latency median %.1f ms p90 %.1f ms; dropped %d, corrupt %d%s",
        stats["frames_written"],
        stats["wall_s"],
        stats["fps"],
        stats["latency_ms"]["end_to_end"]["median"] or 0,
        stats["latency_ms"]["end_to_end"]["p90"] or 0,
        stats["frames_dropped"],
        stats["frames_corrupt"],
        " (stopped early)" if interrupted else "",
    )

    bench = None
    if cfg.benchmark and not interrupted and stats["frames_written"]:
        bench = measure_baselines(
            cfg, model, pipeline.source, preprocess, overlay, hud_label, stats["frames_written"]
        )
    info = {
        "model": meta.get("model"),
        "checkpoint": str(choice.path),
        "checkpoint_reason": choice.reason,
        "val_miou": meta.get("val_miou"),
        "backend": backend.name,
        "precision": backend.precision,
        "backend_note": backend.note,
        "calibration": model.calibration_info,
        "input_size": list(size),
        "source": str(cfg.source),
        "source_size": pipeline.frame_size,
        "max_batch": pcfg.max_batch,
        "workers": pcfg.workers,
        "drop": drop,
        "threads": cfg.get("threads"),
        "interrupted": interrupted,
        "source_error": str(pipeline.source_error) if pipeline.source_error else None,
        "outputs": outputs,
        "pipeline": stats,
        "benchmark": bench,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    row = write_report(info, run_dir)
    print_report(info, row)
    for out in outputs:
        print(f"output: {out}")
    if pipeline.source_error is not None:
        raise pipeline.source_error
    return info


def measure_baselines(
    cfg, model: RealtimeModel, source: Source, preprocess, overlay, hud_label, frames: int
) -> dict:
    """Model-only fps and the sequential loop over the same source, same backend, same sink type.

    Both use the backend with ``sequential_threads`` (default: the pipeline's ``threads``, i.e. the
    very same backend object; another value builds a second backend with that thread count).
    """
    threads = cfg.get("sequential_threads")
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
        kind = cfg.sink if cfg.sink in ("file", "folder") else "none"
        sink = {
            "file": lambda: VideoFileSink(Path(tmp) / "seq.mp4", source.fps),
            "folder": lambda: FolderSink(Path(tmp) / "frames"),
            "none": NullSink,
        }[kind]()
        seq = in_thread(sequential, source, preprocess, infer, overlay, sink, hud_label)
    log.info("sequential loop: %d frames, %.1f fps", seq["frames"], seq["fps"])
    return {"model_only": mod, "sequential": seq, "threads": threads}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="realtime")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    realtime(cfg)


if __name__ == "__main__":
    main()
