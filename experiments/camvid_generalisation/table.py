"""The ablation table and curves of the sequence-disjoint CamVid runs (ablation.sh, gpu_sweep.py).

    .venv/bin/python experiments/camvid_generalisation/table.py logs/camvid_generalisation
    .venv/bin/python experiments/camvid_generalisation/table.py logs/camvid_generalisation_gpu --gpu

Reads each run's run.json and metrics.csv (val = every frame of 0006R0, the sequence held out) and
writes beside this file, or into --out (``gpu_`` in front of each name with ``--gpu``):
ablation.csv, ablation.md (last-epoch and best val mIoU, the delta against the current recipe at the
same epochs, mean over seeds where a change ran twice) and curves.png (val mIoU per epoch). The last
epoch is the figure that counts: the final recipe trains for fixed epochs with no selection on any
val, so a run's best epoch would flatter it. With no run found it writes nothing and exits 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
# run folder -> (change, seed): runs of one change at other seeds are averaged
RUNS = {
    "base": ("current recipe", 42),
    "base_seed2": ("current recipe", 7),
    "ohem": ("+ OHEM (p < 0.7, min 100k px)", 42),
    "ohem_seed2": ("+ OHEM (p < 0.7, min 100k px)", 7),
    "ds": ("+ deep supervision (3 aux heads)", 42),
    "aug": ("+ scale 0.5-2.0 + photometric", 42),
    "ema": ("+ EMA of the weights", 42),
    "ema_seed2": ("+ EMA of the weights", 7),
    "ds_kd": ("+ deep supervision + CWD distillation (lite2 teacher)", 42),
    "teacher_lite2": ("teacher: PP-LiteSeg EfficientNet-Lite2", 42),
    "ds_e32": ("+ deep supervision, 32 epochs", 42),
    "ds_aug_e32": ("+ deep supervision + scale/photometric, 32 epochs", 42),
}
# gpu_sweep.py's run folders (one lent GPU, several runs at once): the same changes, longer budgets
DS_LABEL = "+ deep supervision (3 aux heads)"
GPU_RUNS = {
    "base_e16": ("current recipe", 42),
    "base_e16_s7": ("current recipe", 7),
    "ds_e16": (DS_LABEL, 42),
    "ds_e16_s7": (DS_LABEL, 7),
    "ds_e40": (DS_LABEL, 42),
    "ds_e40_s7": (DS_LABEL, 7),
    "ds_e60": (DS_LABEL, 42),
    "ds_e60_s7": (DS_LABEL, 7),
    "ds_e80": (DS_LABEL, 42),
    "ds_e80_s7": (DS_LABEL, 7),
    "ds_aug_e80": ("+ deep supervision + scale/photometric", 42),
    "ds_aug_e80_s7": ("+ deep supervision + scale/photometric", 7),
    "ohem_e16": ("+ OHEM (p < 0.7, min 100k px)", 42),
    "ohem_e16_s7": ("+ OHEM (p < 0.7, min 100k px)", 7),
    "ema_e16": ("+ EMA of the weights", 42),
    "ema_e16_s7": ("+ EMA of the weights", 7),
}


def val_curve(run: Path) -> list[tuple[int, float]]:
    rows = csv.DictReader((run / "metrics.csv").open())
    return [(int(r["epoch"]) + 1, 100 * float(r["val/miou"])) for r in rows if r.get("val/miou")]


def collect(root: Path, runs: dict[str, tuple[str, int]]) -> list[dict]:
    out = []
    for name, (change, seed) in runs.items():
        run = root / name
        if not (run / "run.json").is_file():
            continue
        record = json.loads((run / "run.json").read_text())
        curve = val_curve(run)
        if not curve:
            continue
        # a run that did not finish (stopped by a restart) is shown, marked, never averaged or ranked
        finished = record.get("status") == "finished"
        out.append(
            {
                "run": name,
                "change": change,
                "seed": seed,
                "epochs": record["epochs"],
                "last": round(curve[-1][1], 2),
                "best": round(max(v for _, v in curve), 2),
                "wall_min": round((record.get("wall_time_s") or 0) / 60, 1),
                "train_img_s": record.get("train_images_per_s"),
                "val_iou": record.get("val_iou") or {},
                "curve": curve,
                "finished": finished,
            }
        )
    return out


def table(rows: list[dict]) -> str:
    by = defaultdict(list)
    stopped = [r for r in rows if not r["finished"]]
    for r in rows:
        if r["finished"]:
            by[(r["change"], r["epochs"])].append(r)
    base16 = [r["last"] for r in by.get(("current recipe", 16), [])]
    ref = sum(base16) / len(base16) if base16 else None
    lines = [
        "| change | epochs | seeds | last-epoch val mIoU | mean | delta vs current (16 ep) | best epoch's |",
        "|---|---|---|---|---|---|---|",
    ]
    for (change, epochs), rs in by.items():
        lasts = [r["last"] for r in rs]
        bests = " / ".join("{:.2f}".format(r["best"]) for r in rs)
        mean = sum(lasts) / len(lasts)
        delta = f"{mean - ref:+.2f}" if ref is not None and change != "current recipe" else "-"
        lines.append(
            f"| {change} | {epochs} | {len(rs)} | {' / '.join(f'{v:.2f}' for v in lasts)} | "
            f"{mean:.2f} | {delta} | {bests} |"
        )
    for r in stopped:
        lines.append(
            f"| {r['change']} (stopped after epoch {r['curve'][-1][0]}, not ranked) | {r['epochs']} | 1 | "
            f"{r['last']:.2f} (epoch {r['curve'][-1][0]}) | - | - | {r['best']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    for r in rows:
        xs, ys = zip(*r["curve"], strict=True)
        note = "" if r["finished"] else ", stopped"
        ax.plot(xs, ys, marker="o", ms=3, ls="-" if r["finished"] else "--",
                label=f"{r['run']} (seed {r['seed']}{note})")  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("val mIoU on 0006R0 (held-out sequence), %")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("root", nargs="?", default=None, type=Path,
                    help="the runs' folder (default: logs/camvid_generalisation, "
                    "logs/camvid_generalisation_gpu with --gpu)")  # fmt: skip
    ap.add_argument("--gpu", action="store_true", help="gpu_sweep.py's runs: gpu_* files")
    ap.add_argument(
        "--out", type=Path, default=HERE, help="where to write (default: beside this file)"
    )
    args = ap.parse_args(argv)
    default = "logs/camvid_generalisation_gpu" if args.gpu else "logs/camvid_generalisation"
    root = args.root or Path(default)
    rows = collect(root, GPU_RUNS if args.gpu else RUNS)
    if not rows:
        print(f"error: no runs with run.json and val metrics under {root}: nothing written",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    stem = "gpu_" if args.gpu else ""
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / f"{stem}ablation.csv").open("w", newline="") as f:
        cols = [
            "run",
            "change",
            "seed",
            "epochs",
            "finished",
            "last",
            "best",
            "wall_min",
            "train_img_s",
        ]
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    md = table(rows)
    (args.out / f"{stem}ablation.md").write_text(md)
    where = "one H200, several runs at once" if args.gpu else "2-core CPU"
    plot(
        rows,
        args.out / f"{stem}curves.png",
        f"CamVid, sequence-disjoint val: recipe ablations ({where})",
    )
    print(md)


if __name__ == "__main__":
    main()
