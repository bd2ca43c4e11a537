"""What each temporal filter costs per frame, side by side, on the logits of a real stream.

The postprocess stage only (logits -> class map; the gray cue is made in the preprocess stage and
timed separately), every variant timed back to back on the same frame, frame after frame, several
passes: medians that machine noise shifts alike. The filter as it was before issue 26 (probabilities
blended along a full-size optical flow) is loaded from git (``--before``, a commit), so the old and
the new run in one process on one machine.

    .venv/bin/python experiments/temporal_filter/cost.py --checkpoint camvid \
        --source ../shared/data/video/solidWhiteRight.mp4 --out experiments/temporal_filter/cost.csv
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rtseg.checkpoints.reading import load_network
from rtseg.checkpoints.spec import choose_checkpoint
from rtseg.infer.frames import Preprocess, maps_from_logits
from rtseg.infer.temporal import FilterConfig, make_filter
from rtseg.realtime.open_source import open_source
from rtseg.utils.machine import cpu_name

REPO = Path(__file__).resolve().parents[2]
# the last commit with issue 17's filter (full-size probability blend along the flow)
BEFORE = "e20772e"


def old_filter_module(commit: str):
    """``rtseg.infer.temporal`` as it was at ``commit``, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{commit}:src/rtseg/infer/temporal.py"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "temporal_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("temporal_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", default="camvid")
    p.add_argument("--source", required=True)
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--before", default=BEFORE, help="a commit with the old filter (none: skip it)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    net, meta = load_network(choose_checkpoint(args.checkpoint, "logs").path)
    size = tuple(meta["input_size"])
    pre = Preprocess(size, meta["mean"], meta["std"])
    frames = [f.image for f in open_source(args.source, max_frames=args.frames)]
    with torch.inference_mode():
        logits = [net(torch.from_numpy(pre(f))[None]) for f in frames]
    makers = {
        "none": lambda: None,
        "flow m=1 (issue 26)": lambda: make_filter(FilterConfig("flow", margin=1.0), size),
        "ema a=0.3": lambda: make_filter(FilterConfig("ema", alpha=0.3), size),
    }
    if args.before != "none":
        old = old_filter_module(args.before)
        makers["flow a=0.3 (issue 17, full size)"] = lambda: old.make_filter(
            old.FilterConfig("flow", alpha=0.3), size
        )
    post = {k: [] for k in makers}
    cue = {k: [] for k in makers}
    for _ in range(args.passes):
        filters = {k: make() for k, make in makers.items()}
        for i, lg in enumerate(logits):
            for k, f in filters.items():
                t0 = time.perf_counter()
                c = f.cue(frames[i]) if f is not None else None
                t1 = time.perf_counter()
                maps_from_logits(lg) if f is None else f.maps(lg, [c])
                t2 = time.perf_counter()
                if i:  # the first frame only fills the state
                    cue[k].append((t1 - t0) * 1e3)
                    post[k].append((t2 - t1) * 1e3)
    base = float(np.median(post["none"]))
    rows = []
    for k in makers:
        med = float(np.median(post[k]))
        rows.append(
            {
                "variant": k,
                "post_ms_median": round(med, 3),
                "post_ms_p25": round(float(np.percentile(post[k], 25)), 3),
                "post_ms_p75": round(float(np.percentile(post[k], 75)), 3),
                "added_ms": round(med - base, 3),
                "cue_ms_median": round(float(np.median(cue[k])), 3),
                "frames": len(frames),
                "passes": args.passes,
                "size": f"{size[0]}x{size[1]}",
                "threads": args.threads,
                "cpu": cpu_name(),
            }
        )
        print(
            f"{k:34s} post {med:6.2f} ms (+{med - base:5.2f})  cue {rows[-1]['cue_ms_median']:.2f} ms"
        )
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
