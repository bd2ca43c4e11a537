"""Score every finished fold run the way users score models: rtseg-eval on its last.ckpt, on its
held-out sequence, in fp32, plain and with each test-time augmentation or inference size.

    .venv/bin/python experiments/camvid_folds/evaluate.py logs/camvid_folds [--modes plain flip ms up]

Two things make training's own val figure unfit to compare runs across commits: until 8bdd431 runs
under ``precision=auto`` validated in bf16 autocast where bf16-mixed was the faster format (a fold
checkpoint read 41.34 there and 40.72 in fp32), and until 41fd211 last.ckpt held the best epoch,
not the last. Each score lands in ``<run>/eval/<mode>/eval.json`` and the epoch last.ckpt holds
in ``<run>/eval/checkpoint.json`` (skipped when present); table.py ranks them. Evaluations do not
depend on the machine's load, so they may run beside trainings (nice 19, one thread).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rtseg.checkpoints.reading import read_checkpoint

# mode -> rtseg-eval overrides. up: the network fed 450x600 (x1.25) instead of 360x480
MODES = {
    "plain": [],
    "flip": ["tta=flip"],
    "ms": ["tta=ms"],
    "ms_flip": ["tta=ms_flip"],
    "up": ["input_size=[450,600]"],
}


def finished_runs(root: Path) -> list[Path]:
    runs = []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        record = run / "run.json"
        if record.is_file() and json.loads(record.read_text()).get("status") == "finished":
            if (run / "checkpoints" / "last.ckpt").is_file():
                runs.append(run)
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, nargs="?", default=Path("logs/camvid_folds"))
    ap.add_argument(
        "--modes", nargs="+", default=["plain", "flip", "ms", "up"], choices=list(MODES)
    )
    ap.add_argument("--eval", default=".venv/bin/rtseg-eval", help="the rtseg-eval to run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nice", type=int, default=19, help="niceness of each rtseg-eval (0: alone)")
    args = ap.parse_args()
    if not args.root.is_dir():
        print(f"{args.root}: no such folder (run folds.sh first)", file=sys.stderr)
        return 2
    failed = 0
    runs = finished_runs(args.root)
    for run in runs:
        held = run / "eval" / "checkpoint.json"
        if not held.is_file():
            epochs = json.loads((run / "run.json").read_text()).get("epochs")
            epoch = read_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"]
            held.parent.mkdir(parents=True, exist_ok=True)
            held.write_text(json.dumps({"epoch": epoch, "last_epoch": epoch + 1 == epochs}))
    for mode in args.modes:  # every run's ranking figure (plain) before any augmentation
        for run in runs:
            out = run / "eval" / mode
            if (out / "eval.json").is_file():
                continue
            cmd = ["nice", "-n", str(args.nice), args.eval, f"checkpoint={run / 'checkpoints' / 'last.ckpt'}",
                   "split=val", f"threads={args.threads}", *MODES[mode], f"hydra.run.dir={out}"]  # fmt: skip
            print(f"== {run.name} {mode}", flush=True)
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                failed += 1
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
                print(f"!! {run.name} {mode}: exit {done.returncode}: {' '.join(tail)}", flush=True)
                continue
            miou = json.loads((out / "eval.json").read_text())["miou"]
            print(f"   mIoU {100 * miou:.2f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
