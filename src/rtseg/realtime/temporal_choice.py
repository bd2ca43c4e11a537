"""``temporal=auto``: the most consistent temporal filter the stream can afford, by measurement.

As ``backend=auto`` times its candidates, this times the filters on the model's own logits of the
stream's first frames, on this machine and backend: the inference stage's time per frame unfiltered
(the backend's call plus the plain class map) and what each filter adds to it (``measure_filters``,
the *isolated* cost). That figure undercounts what the stream pays: on two cores the filter's
work also takes CPU from decode, overlay and encode (issue 34: flow measured alone at 8% of the
frame, the stream lost 18.5%: 44.2 -> 36.0 fps). So, where the source can be read again (a file,
an image folder, the synthetic scene), the stream itself is then run for about
``auto_probe_seconds`` over its first frames with its own stages and sink kind (``probe_stream``),
the filter switched on and off in alternating windows of frames (modes rotated each round, the
first window discarded as warm-up), and the decision follows that *end-to-end* cost: the median
per-frame time at the sink with the filter against without it. Candidates, most consistent first
(``rtseg.infer.temporal.AUTO_ORDER``: flow, ema, none, as experiments/temporal_filter measured
them); a candidate whose isolated cost already fails is not probed (the stream pays at least its
own work); the first that fits wins:

- a live source or a file played live: the stream with the filter must keep the source's frame
  rate (within a 10% headroom), else frames are dropped;
- a file read as fast as it decodes: the filter may cost at most ``auto_max_share`` of the
  unfiltered per-frame time.

The isolated measurements are remembered per machine, model, input size, backend and threads in
``<cache>/temporal.json`` beside the backend cache (``auto.cache_dir``); the end-to-end probe
depends on the source and sink as well and runs every time (a couple of seconds). A camera or URL
is not probed (it cannot be read again, nor faster than it delivers): the isolated rule decides
there, and says so. The choice, its reason and both figures go into one log line and into
realtime.json (``temporal.reason``, ``temporal.cost``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rtseg.infer.frames import maps_from_logits
from rtseg.infer.temporal import AUTO_ORDER, FilterConfig, TemporalFilter, make_filter
from rtseg.utils.machine import cpu_name
from rtseg.utils.paths import write_atomic

log = logging.getLogger("rtseg.realtime")

HEADROOM = 0.9  # a live stream's inference stage may use this share of the frame interval
#: windows of the end-to-end probe: one warm-up window, then this many per mode probed
PROBE_ROUNDS = 4
PROBE_WINDOW = (4, 15)  # frames a window, at least and at most (one switch costs one interval)

#: ``run(temporal, record, frames)``: the stream's own stages over its first ``frames`` frames with
#: ``temporal`` in the filter's slot, ``record(index, frame, labels)`` called as each is written
ProbeRun = Callable[[object, Callable, int], None]


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


def _verdict(
    mode: str, cfg: FilterConfig, measured: dict, budget_ms: float | None
) -> tuple[bool, str, dict]:
    """Whether ``mode`` fits, its figures in words and as numbers: from the end-to-end probe when
    ``measured`` has one (a mode it did not probe failed on its cost alone), else isolated."""
    base_alone = measured["infer_ms"] + measured["plain_ms"]
    alone = measured["costs"].get(mode, 0.0)
    alone_share = alone / base_alone if base_alone > 0 else 0.0
    e2e = measured.get("end_to_end")
    figures = {"isolated_ms": alone, "isolated_share": round(alone_share, 4)}
    if e2e is not None and mode not in e2e["frame_ms"]:
        return False, f"{mode} not probed (alone +{alone:.2f} ms = {alone_share:.0%})", figures
    if e2e is None:
        base, cost = base_alone, alone
        share = cost / base if base > 0 else 0.0
        why = f"{mode} adds {cost:.2f} ms a frame = {share:.0%} of the unfiltered {base:.1f} ms"
        total = f"inference stage {base + cost:.1f} ms"
    else:
        base = e2e["frame_ms"]["none"]
        cost = max(0.0, e2e["frame_ms"][mode] - base)
        share = cost / base if base > 0 else 0.0
        why = (
            f"{mode} costs the stream {cost:.2f} ms a frame = {share:.0%} end to end "
            f"({1e3 / base:.1f} -> {1e3 / (base + cost):.1f} fps; alone it adds {alone:.2f} ms = "
            f"{alone_share:.0%} of the {base_alone:.1f} ms inference stage)"
        )
        if mode == "none":
            why = f"none (the stream at {1e3 / base:.1f} fps end to end)"
        total = f"stream {base + cost:.1f} ms a frame"
    figures.update(cost_ms=round(cost, 3), share=round(share, 4), frame_ms=round(base + cost, 3))
    if budget_ms:
        return base + cost <= HEADROOM * budget_ms or mode == "none", f"{why}: {total}", figures
    return share <= cfg.auto_max_share or mode == "none", why, figures


def decide(cfg: FilterConfig, measured: dict, fps: float | None, live: bool) -> FilterConfig:
    """The first candidate that fits (see the module docstring), with its reason and figures
    (``cost``: the chosen one's, every candidate's, and the measurements they come from)."""
    budget = 1000.0 / fps if live and fps else None
    verdicts = {m: _verdict(m, cfg, measured, budget) for m in AUTO_ORDER}
    mode = next(m for m in AUTO_ORDER if verdicts[m][0])  # none always fits
    rule = (
        f"against the source's {budget:.1f} ms ({fps:.3g} fps, {HEADROOM:.0%} of it usable)"
        if budget
        else f"files: at most {cfg.auto_max_share:.0%}"
    )
    why = verdicts[mode][1] + ("" if mode == "none" else f" ({rule})")
    skipped = AUTO_ORDER[: AUTO_ORDER.index(mode)]
    if skipped:
        texts = "; ".join(verdicts[m][1] for m in skipped)
        why += f"; {', '.join(skipped)} would not fit ({rule}): {texts}"
    isolated = {
        k: measured[k] for k in ("infer_ms", "plain_ms", "costs", "frames") if k in measured
    }
    cost = {
        "basis": "end_to_end" if measured.get("end_to_end") else "isolated",
        **verdicts[mode][2],
        "candidates": {m: v[2] for m, v in verdicts.items()},
        "isolated": isolated,
        "end_to_end": measured.get("end_to_end"),
    }
    return replace(cfg, mode=mode, reason=why, cost=cost)


class Interleaved:
    """The filter's slot in the stream while it is probed: window ``w`` (``window`` frames) runs
    mode ``plan[w]`` of ``filters`` (None: the plain class map). Duck-types ``TemporalFilter``:
    ``cue`` runs in capture order (the preprocess thread) and tags the cue with the frame's
    number, ``post`` reads that tag (one inference worker), so a frame's mode travels with it."""

    def __init__(self, filters: dict[str, TemporalFilter | None], plan: list[str], window: int):
        self.filters, self.plan, self.window = filters, plan, window
        self._seq = 0

    def mode(self, seq: int) -> str:
        return self.plan[min(seq // self.window, len(self.plan) - 1)]

    def cue(self, frame: np.ndarray):
        seq, self._seq = self._seq, self._seq + 1
        f = self.filters[self.mode(seq)]
        return seq, None if f is None else f.cue(frame)

    def post(self, cues):
        pending = iter(cues)

        def maps(logits, n):
            out = []
            for i in range(n):
                seq, cue = next(pending)
                f = self.filters[self.mode(seq)]
                if f is None:
                    out.append(maps_from_logits(logits[i : i + 1])[0])
                    continue
                if seq % self.window == 0:  # a window's first frame only fills the state
                    f.reset()
                out.append(f.maps(logits[i : i + 1], [cue])[0])
            return np.stack(out)

        return maps


def probe_plan(modes: list[str], rounds: int = PROBE_ROUNDS) -> list[str]:
    """The mode of each window: a warm-up window (discarded), then ``rounds`` rounds of every mode
    rotated each round (A B, B A, A B, ...), so a drift in load meets every mode alike."""
    plan = [modes[0]]
    for r in range(rounds):
        k = r % len(modes)
        plan += modes[k:] + modes[:k]
    return plan


def probe_stream(
    run: ProbeRun,
    filters: dict[str, TemporalFilter | None],
    window: int,
    rounds: int = PROBE_ROUNDS,
) -> dict | None:
    """The stream's per-frame ms at its sink with each mode of ``filters``, interleaved (see the
    module docstring): per window the mean interval between its frames' writes (the switch's
    interval left out), per mode the median over its windows. None when the source ended before
    every mode had two whole windows."""
    plan = probe_plan(list(filters), rounds)
    written: list[float] = []
    t0 = time.perf_counter()
    run(
        Interleaved(filters, plan, window),
        lambda *_: written.append(time.perf_counter()),
        len(plan) * window,
    )
    seconds = time.perf_counter() - t0
    spans: dict[str, list[float]] = {m: [] for m in filters}
    for w, mode in enumerate(plan[1:], start=1):
        t = written[w * window + 1 : (w + 1) * window]
        if len(t) == window - 1 and len(t) > 1:
            spans[mode].append((t[-1] - t[0]) / (len(t) - 1) * 1e3)
    if min(len(v) for v in spans.values()) < 2:
        return None
    frame_ms = {m: round(float(np.median(v)), 3) for m, v in spans.items()}
    return {
        "frame_ms": frame_ms,
        "fps": {m: round(1e3 / ms, 2) for m, ms in frame_ms.items()},
        "windows": {m: len(v) for m, v in spans.items()},
        "window": window,
        "frames": len(written),
        "seconds": round(seconds, 2),
    }


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
    probe: ProbeRun | None = None,
    no_probe: str = "",
) -> FilterConfig:
    """``cfg`` itself unless it asks for auto; else the measured choice: the isolated costs
    (cached under ``key``), then, with ``probe``, the end-to-end probe of the candidates they
    leave (``no_probe``: why the caller has none, said in the reason)."""
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
    measured = {k: v for k, v in measured.items() if k != "time"}
    budget = 1000.0 / fps if live and fps else None
    note = no_probe or ("" if probe else "no probe run")
    if probe is not None and not cfg.auto_probe_seconds:
        note = "temporal_filter.auto_probe_seconds=0"
    elif probe is not None:
        # the stream pays at least a filter's own work: one that fails alone is not probed
        modes = [m for m in AUTO_ORDER if m != "none" and _verdict(m, cfg, measured, budget)[0]]
        if not modes:
            note = "every filter fails on its cost alone"
        else:
            filters = {
                "none": None,
                **{m: make_filter(replace(cfg, mode=m), size_hw) for m in modes},
            }
            fps_guess = 1e3 / max(measured["infer_ms"] + measured["plain_ms"], 1e-3)
            windows = len(probe_plan(list(filters)))
            lo, hi = PROBE_WINDOW
            window = int(min(hi, max(lo, cfg.auto_probe_seconds * fps_guess / windows)))
            try:
                measured["end_to_end"] = probe_stream(probe, filters, window)
            except Exception as e:  # noqa: BLE001 - the run itself may still work: decide alone
                note = f"the probe failed ({type(e).__name__}: {str(e)[:200]})"
                log.warning("temporal=auto: %s", note)
            else:
                if measured["end_to_end"] is None:
                    note = "the source ended before the end-to-end probe did"
    chosen = decide(cfg, measured, fps, live)
    e2e = measured.get("end_to_end")
    how = (
        f"end to end over {e2e['frames']} frames of the stream in {e2e['seconds']:.1f} s"
        if e2e
        else f"not probed end to end: {note}"
    )
    chosen = replace(chosen, reason=f"{chosen.reason} (alone: {source} here; {how})")
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
