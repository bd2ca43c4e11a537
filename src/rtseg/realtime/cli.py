"""rtseg-realtime: run the best (or a given) model on a video stream, pipelined, with the mask overlaid.

Order of work: open the source (a bad one fails in one line before anything slow), choose and
load the model, build the backend(s), warm up, run the pipeline (Ctrl-C/SIGTERM stop the source
and drain, so the output stays playable), then with ``benchmark=true`` measure model-only and
sequential-loop fps on the same source, and write realtime.json / realtime.csv in the run folder.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rtseg.errors import SinkError
from rtseg.infer.artifacts import default_cache_dir, model_key
from rtseg.infer.frames import Preprocess, fit_batch
from rtseg.infer.open import open_model
from rtseg.infer.options import InferOptions
from rtseg.infer.registry import check_backend_names
from rtseg.infer.temporal import FilterConfig, make_filter
from rtseg.realtime.baselines import (
    in_thread,
    measure_baselines,
    print_report,
    scratch_sink,
    warm_up,
    write_report,
)
from rtseg.realtime.http import HttpSink, check_port
from rtseg.realtime.model import RealtimeModel
from rtseg.realtime.open_source import build_source, calibration_frames, source_files
from rtseg.realtime.overlay import Overlay
from rtseg.realtime.pipeline import Pipeline, PipelineConfig
from rtseg.realtime.progress import Progress
from rtseg.realtime.sinks import (
    FolderSink,
    MaskSink,
    NullSink,
    Sink,
    VideoFileSink,
    WindowSink,
    check_output,
)
from rtseg.realtime.stream_quality import StreamRecorder, stream_agreement, stream_report
from rtseg.realtime.temporal_choice import choose_filter
from rtseg.realtime.thread_budget import thread_budget
from rtseg.realtime.video_source import VideoSource
from rtseg.utils.cli import command_line_checked, stop_at_once, user_errors_as_one_line
from rtseg.utils.config import output_dir, to_container
from rtseg.utils.images import IMAGENET_MEAN, IMAGENET_STD
from rtseg.utils.machine import cpu_name, set_threads
from rtseg.utils.paths import CONF_DIR, check_writable_folder
from rtseg.utils.redact import redact

log = logging.getLogger("rtseg.realtime")

AUTO_FRAMES = 10  # frames of the stream temporal=auto times its candidates on


def _model_key(model) -> str:
    """What the filter's measurement belongs to: the network's weights, or the exported file."""
    if model.net is not None:
        return model_key(model.net)
    return f"file-{model.backend.path.name}" if model.backend.path else "unknown"


def stream_probe(cfg, source, model, preprocess, overlay, hud_label, pcfg):
    """``(run, "")``: temporal=auto's end-to-end probe, the stream's own stages (preprocess, the
    backend, overlay, a scratch sink of the run's kind) over the first frames of a fresh, unpaced
    read of the source; ``(None, why)`` for a camera or URL, which cannot be read again."""
    if isinstance(source, VideoSource) and not source.is_file:
        return None, f"{source.name} cannot be read again (a camera or URL)"

    def run(temporal, record, frames: int) -> None:
        infer = model.standalone_infer(None)
        with tempfile.TemporaryDirectory(prefix="rtseg-probe-") as tmp:
            probe_source = build_source(cfg, max_frames=frames, paced=False)
            sink = scratch_sink(cfg, Path(tmp), probe_source.fps)
            config = replace(pcfg, drop="none", workers=1)
            Pipeline(
                probe_source, preprocess, lambda: infer, overlay, [sink], config, hud_label,
                temporal=temporal, record=record,
            ).run()  # fmt: skip

    return run, ""


@contextmanager
def stop_on_signals(stop):
    """SIGINT/SIGTERM stop the source instead of killing the process: in-flight frames are written.
    A second one stops at once (``KeyboardInterrupt``), e.g. while the model still loads. Yields the
    list of signals caught, so the exit status can say the run was interrupted (128 + signal)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum, _frame):
        caught.append(signum)
        if len(caught) > 2:  # the unwinding itself is stuck (a join, a native call): now
            stop_at_once(signum, "error: interrupted three times: stopped at once")
        if len(caught) > 1:
            raise KeyboardInterrupt
        log.warning(
            "%s: stopping the source and finishing the frames in flight (again: stop at once)",
            signal.Signals(signum).name,
        )
        stop()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def realtime(cfg: DictConfig) -> dict:
    """Signals are caught from the start: a stream still connecting stops too, not only a running one.
    ``info["signal"]``: the signal that stopped the run (None when it ended by itself)."""
    stop = threading.Event()
    with stop_on_signals(stop.set) as caught:
        info = _realtime(cfg, stop)
    info["signal"] = signal.Signals(caught[0]).name if caught else None
    return info


def _realtime(cfg: DictConfig, stop: threading.Event) -> dict:
    # what can be refused at once is, before the source opens and the model loads
    check_backend_names([cfg.backend], "backend")
    check_backend_names((cfg.get("auto") or {}).get("candidates") or [], "auto.candidates")
    if cfg.sink == "http":
        check_port(cfg.http.host, cfg.http.port)
    set_threads(cfg.get("threads"))
    run_dir = output_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("output") and cfg.sink in ("file", "folder"):  # before any slow work
        # a file in the way, a read-only folder or a full disk: refused before the model loads
        check_writable_folder(cfg.output, "output", file=cfg.sink == "file")
    # first: a bad source fails before the slow model loading
    source = build_source(cfg, stop_event=stop)
    # never over the source or an existing file (sink=window may fall back to writing one)
    if cfg.get("output") and cfg.sink in ("file", "folder", "window"):
        try:
            kind = "folder" if cfg.sink == "folder" else "file"
            check_output(cfg.output, kind, source_files(source), bool(cfg.get("overwrite")))
        except SinkError:
            source.close()
            raise
    drop = cfg.drop if cfg.drop != "auto" else ("latest" if source.live else "none")
    log.info(
        "source: %s (%s, %s frames, drop=%s)",
        source.name,
        "live" if source.live else "file",
        source.expected_frames or "?",
        drop,
    )
    temporal = FilterConfig.from_cfg(cfg.get("temporal"), cfg.get("temporal_filter"), cfg.workers)

    opened = open_model(
        cfg.checkpoint,
        cfg.backend,
        cfg.get("size"),
        cfg.get("threads"),
        # a live source does not wait the minutes auto's first measurement takes
        replace(InferOptions.from_cfg(cfg), measure=not source.live),
        cfg.paths.log_dir,
        data=cfg.get("data"),
        frames=lambda size, mean, std: calibration_frames(cfg, size, mean, std),
        workdir=run_dir / "backend",
    )
    model = RealtimeModel(opened, cfg.max_batch, cfg.get("threads"), run_dir / "backend")
    meta, size, backend, choice = model.meta, model.size, model.backend, model.choice
    mean, std = meta.get("mean") or IMAGENET_MEAN, meta.get("std") or IMAGENET_STD
    preprocess = Preprocess(size, mean, std, cfg.interpolation)
    agree = cfg.stream_agreement
    agreement = in_thread(
        stream_agreement,
        backend,
        model.net,
        lambda: calibration_frames(cfg, size, mean, std, agree.frames, agree.stride),
        float(agree.min),
    )
    overlay_cfg = to_container(cfg.overlay)
    overlay = Overlay(meta.get("palette"), meta.get("class_names"), **overlay_cfg)
    pcfg = PipelineConfig(
        drop=drop,
        max_batch=int(cfg.max_batch),
        workers=int(cfg.workers),
        queue_size=int(cfg.queue_size),
    )
    hud_label = f"{backend.name} {backend.precision} {size[0]}x{size[1]}"
    probe, no_probe = stream_probe(cfg, source, model, preprocess, overlay, hud_label, pcfg)
    temporal = in_thread(  # where the pipeline runs inference (see in_thread)
        lambda: (
            choose_filter(
                temporal,
                lambda x: backend(fit_batch(x, 1 if backend.dynamic else backend.batch_size))[:1],
                calibration_frames(cfg, size, mean, std, AUTO_FRAMES, 3)[0],
                size,
                fps=(source.fps * (cfg.get("rate") or 1.0)) if source.fps else None,
                live=drop == "latest",
                cache_dir=InferOptions.from_cfg(cfg).cache_dir or default_cache_dir(),
                key=f"{_model_key(model)}|{backend.name}|{backend.precision}|t{model.threads}",
                probe=probe,
                no_probe=no_probe,
            )
            if temporal.requested == "auto" and temporal.mode != "none"
            else temporal
        )
    )

    pipeline = None
    sinks = make_sinks(
        cfg.sink,
        cfg.get("output"),
        run_dir,
        source.fps,
        cfg.get("mask_export"),
        on_quit=lambda: pipeline and pipeline.stop(),
        video={**to_container(cfg.video), "overwrite": bool(cfg.get("overwrite"))},
        http={
            **to_container(cfg.http),
            "legend": list(zip(overlay.class_names, overlay.palette, strict=False)),
            "stats": lambda: pipeline.live_stats() if pipeline else {},
        },
    )
    sq = cfg.stream_quality
    recorder = StreamRecorder(sq.max_frames, sq.max_side) if cfg.benchmark else None
    pipeline = Pipeline(
        source,
        preprocess,
        model.make_infer,
        overlay,
        sinks,
        pcfg,
        hud_label,
        temporal=make_filter(temporal, size),
        record=recorder,
    )
    for infer in pipeline.infers:
        warm_up(infer, size, pcfg.max_batch)
    progress = (
        Progress(pipeline.live_stats, source.expected_frames, cfg.progress.log_every_s)
        if cfg.progress.enabled
        else None
    )
    sink_error = None
    try:
        stats = pipeline.run(on_tick=progress and progress.update)
    except SinkError as e:  # a full disk and the like: realtime.json still records the frames done
        sink_error = e
        stats = pipeline.stats()
    finally:
        if progress:
            progress.close()
    failed = pipeline.source_error is not None or sink_error is not None
    interrupted = source.stopped and not failed  # by a signal or the window's quit key
    ended_early = (
        "interrupted"
        if interrupted
        else str(pipeline.source_error or sink_error)
        if failed
        else getattr(source, "ended_early", None)
    )
    outputs = [
        str(s.path) for s in sinks if s.path is not None and not s.failed and Path(s.path).exists()
    ]
    for s in sinks:
        if s.note:
            log.warning("%s", s.note)
    if getattr(source, "ended_early", None):
        log.warning("%s: %s", source.name, source.ended_early)
    log.info(
        "pipeline: %d frames in %.1f s = %.1f fps end to end; latency median %.1f ms p90 %.1f ms; dropped %d, corrupt %d%s",
        stats["frames_written"],
        stats["wall_s"],
        stats["fps"],
        stats["latency_ms"]["end_to_end"]["median_ms"] or 0,
        stats["latency_ms"]["end_to_end"]["p90_ms"] or 0,
        stats["frames_dropped"],
        stats["frames_corrupt"],
        " (stopped early)" if ended_early else "",
    )

    bench = quality = None
    if cfg.benchmark and not ended_early and stats["frames_written"]:
        bench = measure_baselines(
            cfg,
            model,
            pipeline.source,
            preprocess,
            overlay,
            hud_label,
            stats["frames_written"],
            temporal,
        )
        quality = stream_report(recorder, pipeline.source, meta.get("class_names"), sq.flow_preset)
    info = {
        "model": meta.get("model"),
        "cpu": cpu_name(),
        "checkpoint": str(choice.path),
        "checkpoint_reason": choice.reason,
        "val_miou": meta.get("val_miou"),
        "backend": backend.name,
        "precision": backend.precision,
        "backend_note": backend.note,
        "calibration": opened.record,
        "input_size": list(size),
        "source": redact(cfg.source),
        "source_size": pipeline.frame_size,
        "max_batch": pcfg.max_batch,
        "workers": pcfg.workers,
        "drop": drop,
        "threads": model.threads,
        "thread_budget": thread_budget(model.threads, source, sinks),
        "interrupted": interrupted,
        "ended_early": ended_early,
        "output_notes": [s.note for s in sinks if s.note],
        "source_error": str(pipeline.source_error) if pipeline.source_error else None,
        "sink_error": str(sink_error) if sink_error else None,
        "outputs": outputs,
        "pipeline": stats,
        "benchmark": bench,
        "temporal": temporal.describe(),
        "stream_quality": quality,
        "stream_agreement": agreement,
        "config": json.loads(redact(json.dumps(to_container(cfg), default=str))),
    }
    if sink_error is not None:
        raise SinkError(f"{sink_error}; {kept_report(info, run_dir)}") from sink_error
    row = write_report(info, run_dir)
    print_report(info, row)
    for out in outputs:
        print(f"output: {out}")
    if pipeline.source_error is not None:
        raise pipeline.source_error
    return info


def kept_report(info: dict, run_dir: Path) -> str:
    """Write realtime.json/csv after a failed sink and say what was kept, for the one error line."""
    done = info["pipeline"]["frames_written"]
    try:
        write_report(info, run_dir)
    except OSError as e:
        return f"realtime.json could not be written either ({e.strerror or e})"
    frames = f"{done} frame{'s' * (done != 1)}"
    kept = [f"{out} (the {frames} written before it stopped)" for out in info["outputs"]]
    also = f"; kept: {', '.join(kept)}" if kept else ""
    return f"{run_dir / 'realtime.json'} records the {frames} done{also}"


def make_sinks(
    kind: str,
    output: str | Path | None,
    run_dir: Path,
    fps: float | None,
    mask_export: str | None = None,
    on_quit=None,
    video: dict | None = None,
    http: dict | None = None,
) -> list[Sink]:
    """The sinks a config asks for. ``output`` defaults to the run folder.

    ``video``: the mp4 writer's options (codec, preset, crf); ``http``: the server's (host, port,
    jpeg_quality) and what feeds its page: ``legend`` (class name, RGB), ``stats`` (a callable).
    """
    sinks: list[Sink] = []
    if kind == "window" and not WindowSink.available():
        log.warning(
            "sink=window but no display (or OpenCV without GUI): writing the video to a file instead"
            " (sink=http shows it in a browser)"
        )
        kind = "file"
    if kind == "file":
        path = Path(output) if output else run_dir / "realtime.mp4"
        sinks.append(VideoFileSink(path, fps, **(video or {})))
    elif kind == "folder":
        sinks.append(FolderSink(Path(output) if output else run_dir / "frames"))
    elif kind == "window":
        sinks.append(WindowSink(on_quit=on_quit))
    elif kind == "http":
        sinks.append(HttpSink(**(http or {})))
    elif kind == "none":
        sinks.append(NullSink())
    else:
        raise SinkError(f"sink={kind} is not one of file, folder, window, http, none")
    if mask_export:
        sinks.append(MaskSink(run_dir / "masks", mask_export))
    return sinks


@command_line_checked
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="realtime")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    """Exit status: 0 at the source's end, 128 + the signal after Ctrl-C (130) or SIGTERM (143),
    once the frames in flight are written; 2 for bad input."""
    try:
        info = realtime(cfg)
    except KeyboardInterrupt:
        # not sys.exit: the interpreter would wait for worker threads, and one stuck in a native
        # call kept the process alive until SIGKILL (issue 36)
        stop_at_once(signal.SIGINT, "error: interrupted twice: stopped at once")
    if info["signal"]:
        sys.exit(128 + signal.Signals[info["signal"]])


if __name__ == "__main__":
    main()
