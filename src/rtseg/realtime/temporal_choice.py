"""``temporal=auto``: the most consistent temporal filter the stream can afford, by measurement.

As ``backend=auto`` times its candidates, this times the filters on the model's own logits of the
stream's first frames, on this machine and backend: the inference stage's time per frame unfiltered
(the backend's call plus the plain class map) and what each filter adds to it. Candidates, most
consistent first (``rtseg.infer.temporal.AUTO_ORDER``: flow, ema, none, as
experiments/temporal_filter measured them); the first that fits wins:

- a live source or a file played live: the inference stage with the filter must keep the
  source's frame rate (within a 10% headroom), else frames are dropped;
- a file read as fast as it decodes: the filter may add at most ``auto_max_share`` of the
  unfiltered per-frame time.

The measurements are remembered per machine, model, input size, backend and threads in
``<cache>/temporal.json`` beside the backend cache (``auto.cache_dir``): a later run decides from
them at once. The choice and its reason go into one log line and into realtime.json.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rtseg.infer.frames import maps_from_logits
from rtseg.infer.temporal import AUTO_ORDER, FilterConfig, make_filter
from rtseg.utils.machine import cpu_name
from rtseg.utils.paths import write_atomic

log = logging.getLogger("rtseg.realtime")

HEADROOM = 0.9  # a live stream's inference stage may use this share of the frame interval


def measure_filters(
    infer, xs: list[torch.Tensor], size_hw, cfg: FilterConfig, runs: int = 2
) -> dict:
    """Per-frame ms of the inference stage (``infer_ms``: the backend's call, ``plain_ms``: the
    plain class map) and what each candidate filter adds (``costs``), medians over ``xs``."""
    passes, logits = [], []
    with torch.inference_mode():
        for x in xs[:3]:  # warm-up: a runtime's first calls in a thread are slow
            infer(x)
        for _ in range(runs):  # the quieter pass counts: a stray load inflates one pass, not both
            times = []
            for x in xs:
                t0 = time.perf_counter()
                out = infer(x)
                times.append((time.perf_counter() - t0) * 1e3)
                if len(logits) < len(xs):
                    logits.append(out)
            passes.append(float(np.median(times)))
    infer_ms = min(passes)
    # the cues as the filters take them (from the frames the model saw: BGR uint8 at model size)
    frames = [_as_frame(x) for x in xs]
    post: dict[str, list[float]] = {m: [] for m in AUTO_ORDER}
    for _ in range(runs):
        filters = {
            m: make_filter(replace(cfg, mode=m), size_hw) if m != "none" else None
            for m in AUTO_ORDER
        }
        for i, lg in enumerate(logits):
            for mode, f in filters.items():  # interleaved: machine noise shifts all alike
                t0 = time.perf_counter()
                maps_from_logits(lg) if f is None else f.maps(lg, [f.cue(frames[i])])
                if i:  # the first frame only fills a filter's state
                    post[mode].append((time.perf_counter() - t0) * 1e3)
    plain = float(np.median(post["none"]))
    return {
        "infer_ms": round(infer_ms, 3),
        "plain_ms": round(plain, 3),
        "costs": {m: round(max(0.0, float(np.median(v)) - plain), 3) for m, v in post.items()},
        "frames": len(xs),
    }


def _as_frame(x: torch.Tensor) -> np.ndarray:
    """A normalised (1, 3, H, W) input back to a uint8 BGR frame (for the gray cues)."""
    img = x[0].permute(1, 2, 0).numpy()
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6) * 255
    return np.ascontiguousarray(img[..., ::-1]).astype(np.uint8)


def decide(cfg: FilterConfig, measured: dict, fps: float | None, live: bool) -> FilterConfig:
    """The first candidate that fits (see the module docstring), with its reason."""
    base = measured["infer_ms"] + measured["plain_ms"]
    costs = measured["costs"]
    for mode in AUTO_ORDER:
        cost = costs.get(mode, 0.0)
        total = base + cost
        if live and fps:
            budget = 1000.0 / fps
            fits = total <= HEADROOM * budget or mode == "none"
            why = (
                f"{mode} adds {cost:.2f} ms a frame: inference stage {total:.1f} ms against the "
                f"source's {budget:.1f} ms ({fps:.3g} fps, {HEADROOM:.0%} of it usable)"
            )
        else:
            share = cost / base if base > 0 else 0.0
            fits = share <= cfg.auto_max_share or mode == "none"
            why = (
                f"{mode} adds {cost:.2f} ms a frame = {share:.0%} of the unfiltered "
                f"{base:.1f} ms (files: at most {cfg.auto_max_share:.0%})"
            )
        if fits:
            skipped = [m for m in AUTO_ORDER[: AUTO_ORDER.index(mode)]]
            if skipped:
                why += f"; {', '.join(skipped)} would not fit ({', '.join(f'+{costs.get(m, 0):.2f} ms' for m in skipped)})"
            return replace(cfg, mode=mode, reason=why)
    raise AssertionError("none always fits")


def choose_filter(
    cfg: FilterConfig,
    infer,
    xs: list[torch.Tensor],
    size_hw,
    *,
    fps: float | None,
    live: bool,
    cache_dir: Path | None,
    key: str,
) -> FilterConfig:
    """``cfg`` itself unless it asks for auto; else the measured choice (cached under ``key``)."""
    if cfg.requested != "auto" or cfg.mode == "none" or not xs:
        return cfg
    index = Path(cache_dir) / "temporal.json" if cache_dir else None
    full_key = f"{cpu_name()}|{key}|{size_hw[0]}x{size_hw[1]}|{cfg.flow_preset}|s{cfg.stride}"
    table = _read(index)
    measured = table.get(full_key)
    source = "cached"
    if measured is None:
        measured = measure_filters(infer, xs, size_hw, cfg)
        source = "measured"
        if index is not None:
            table[full_key] = {**measured, "time": time.time()}
            try:
                write_atomic(index, json.dumps(table, indent=2))
            except OSError as e:  # a read-only cache: decide anyway, measure again next time
                log.warning("temporal=auto: cannot remember the measurement in %s (%s)", index, e)
    chosen = decide(cfg, measured, fps, live)
    chosen = replace(chosen, reason=f"{chosen.reason} ({source} here)")
    log.info("temporal=auto: %s", chosen.reason)
    return chosen


def _read(index: Path | None) -> dict:
    if index is None:
        return {}
    try:
        data = json.loads(index.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
