"""Temporal filter variants on one stream, from one network pass: TC, change rate and, on the
synthetic source, the stream mIoU; plus how many pixels each filter moves off the per-frame mask.

Every variant sees the same logits (eager fp32, the network realtime's fp32 backends agree with),
filtered exactly as ``rtseg-realtime temporal=...`` does, and is measured as ``benchmark=true``
measures (``rtseg.realtime.stream_quality``). ``post_ms_median``: the postprocess stage per frame
(logits -> class map, filter and its gray cue included), timed here one variant after another on the
same logits: run alone for a speed figure. End-to-end speed: run.sh.

    python experiments/temporal_filter/sweep.py --checkpoint camvid \
        --source ../shared/data/video/solidWhiteRight.mp4 --out sweep_dashcam.csv
    python experiments/temporal_filter/sweep.py --checkpoint /tmp/demo17 --source synthetic \
        --seeds 0 1 2 --out sweep_synthetic.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np
import torch

from rtseg.checkpoints.reading import load_network
from rtseg.checkpoints.spec import choose_checkpoint
from rtseg.infer.frames import Preprocess, maps_from_logits
from rtseg.infer.temporal import FilterConfig, make_filter
from rtseg.realtime.open_source import open_source
from rtseg.realtime.stream_quality import StreamRecorder, consistency, stream_miou

VARIANTS = {
    "none": FilterConfig(),
    "ema a=0.5": FilterConfig("ema", alpha=0.5),
    "ema a=0.3": FilterConfig("ema", alpha=0.3),
    # motion-compensated hysteresis (issue 26): margin in logits, flow at 1/stride of the output
    "flow m=0.5": FilterConfig("flow", margin=0.5),
    "flow m=1": FilterConfig("flow", margin=1.0),
    "flow m=2": FilterConfig("flow", margin=2.0),
    "flow m=1 s2": FilterConfig("flow", margin=1.0, stride=2),
    "flow m=1 s8": FilterConfig("flow", margin=1.0, stride=8),
    "flow m=1 no gate": FilterConfig("flow", margin=1.0, motion_threshold=255),
}


def run(checkpoint: str, source_spec: str, seed: int, frames: int | None) -> list[dict]:
    net, meta = load_network(
        choose_checkpoint(checkpoint, os.environ.get("RTSEG_LOG_DIR", "logs")).path
    )
    size = tuple(meta["input_size"])
    pre = Preprocess(size, meta["mean"], meta["std"])
    source = open_source(
        source_spec,
        max_frames=frames,
        synthetic={"frames": frames or 150, "size": [360, 640], "seed": seed, "live": False},
    )
    filters = {name: make_filter(cfg, size) for name, cfg in VARIANTS.items()}
    recorders = {name: StreamRecorder(max_frames=10_000) for name in VARIANTS}
    moved = {name: [] for name in VARIANTS}
    post_ms = {name: [] for name in VARIANTS}  # logits -> class map (+ the cue, made in preprocess)
    with torch.inference_mode():
        for frame in source:
            logits = net(torch.from_numpy(pre(frame.image))[None])
            own = maps_from_logits(logits)[0]
            for name, f in filters.items():
                t0 = time.perf_counter()
                mask = (
                    maps_from_logits(logits)[0]
                    if f is None
                    else f.maps(logits, [f.cue(frame.image)])[0]
                )
                post_ms[name].append((time.perf_counter() - t0) * 1e3)
                moved[name].append(float(np.mean(mask != own)))
                recorders[name](frame.index, frame.image, mask)
    rows = []
    for name, cfg in VARIANTS.items():
        rec = recorders[name]
        tc = consistency(rec) or {}
        miou = stream_miou(rec, source, meta.get("class_names")) or {}
        rows.append(
            {
                "variant": name,
                **{
                    k: (v if cfg.mode != "none" or k == "mode" else None)
                    for k, v in cfg.describe().items()
                    if k not in ("flow_preset", "requested")
                },
                "source": source.name,
                "seed": seed if source_spec == "synthetic" else None,
                "frames": len(rec.masks),
                "mask_size": "x".join(map(str, rec.masks[0].shape)),
                "tc": tc.get("tc"),
                "tc_min": tc.get("tc_min"),
                "change_rate": tc.get("change_rate"),
                "stream_miou": miou.get("miou"),
                "moved_vs_per_frame": float(np.mean(moved[name])),
                "post_ms_median": float(np.median(post_ms[name][1:] or post_ms[name])),
            }
        )
        print(
            f"{name:22s} TC {100 * rows[-1]['tc']:.2f}%  change {100 * rows[-1]['change_rate']:.2f}%"
            f"  post {rows[-1]['post_ms_median']:.2f} ms"
            + (f"  mIoU {100 * rows[-1]['stream_miou']:.2f}" if rows[-1]["stream_miou"] else ""),
            flush=True,
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", default="camvid")
    p.add_argument("--source", default="synthetic")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="synthetic scenes")
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    rows = [r for s in args.seeds for r in run(args.checkpoint, args.source, s, args.frames)]
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
