"""Collect the Pareto record: run.json of each training + results.csv of each benchmark.

    .venv/bin/python experiments/camvid_pareto/table.py logs/pareto
    .venv/bin/python experiments/camvid_pareto/table.py --seq logs/pareto_seq   # + seq_column.sh runs

Writes results.csv, README table rows (table.md) and pareto.png (val mIoU against fps, fp32 and
int8) beside this file, or into --out. ``--seq DIR`` adds the sequence-disjoint column (seq_column.sh:
val on the held-out sequence 0006R0, fixed epochs) to the recorded results.csv (after the table of
ROOT when one is given too) and rewrites seq_table.md. A table needs every network's training and
benchmark, the column at least one run: otherwise it writes nothing and exits 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
ORDER = ["camvid_baseline", "camvid_unet_lite0", "camvid_lraspp_lite0", "camvid_ppliteseg_lite0"]


def _number(bench: dict, backend: str, column: str) -> float | None:
    v = bench.get(backend, {}).get(column)
    return float(v) if v else None


def refuse(line: str) -> None:
    print(f"error: {line}: nothing written", file=sys.stderr)
    sys.exit(2)


def collect(root: Path) -> list[dict]:
    missing = [
        f"{kind}/{exp}"
        for exp in ORDER
        for kind, name in (("train", "run.json"), ("bench", "results.csv"))
        if not (root / kind / exp / name).is_file()
    ]
    if missing:  # a table of fewer networks would replace the recorded one
        refuse(f"{root} lacks {len(missing)} of the {2 * len(ORDER)} runs: {', '.join(missing)}")
    rows = []
    for exp in ORDER:
        run = json.loads((root / "train" / exp / "run.json").read_text())
        bench = {
            r["backend"]: r for r in csv.DictReader((root / "bench" / exp / "results.csv").open())
        }

        def ms(b, bench=bench):
            return _number(bench, b, "latency_ms_median")

        def miou(b, bench=bench):
            return _number(bench, b, "miou_eval")

        rows.append(
            {
                "network": exp.removeprefix("camvid_"),
                "params_M": round(run["params"] / 1e6, 2),
                "gflops": round(run["gflops"], 2),
                "val_miou": round(100 * run["val_miou_best"], 2),
                "epochs": run["epochs"],
                "train_wall_s": round(run["wall_time_s"]),
                "train_img_s": run.get("train_images_per_s"),
                "data_wait_pct": round(100 * (run.get("data_wait_share") or 0), 1),
                "precision": (run.get("extra", {}).get("train_format") or {}).get("precision"),
                "memory_format": (run.get("extra", {}).get("train_format") or {}).get(
                    "memory_format"
                ),
                "eager_fp32_fps": round(1000 / ms("eager"), 1) if ms("eager") else None,
                "openvino_fp32_fps": round(1000 / ms("openvino"), 1) if ms("openvino") else None,
                "openvino_int8_fps": round(1000 / ms("openvino-int8"), 1)
                if ms("openvino-int8")
                else None,
                "int8_val_miou": round(100 * miou("openvino-int8"), 2)
                if miou("openvino-int8")
                else None,
                "val_iou": {k: round(100 * v, 1) for k, v in (run.get("val_iou") or {}).items()},
                "command": "rtseg-train experiment="
                + exp
                + " "
                + " ".join(run.get("overrides") or []),
            }
        )
    return rows


def table(root: Path, out: Path) -> None:
    rows = collect(root)
    flat = [{k: v for k, v in r.items() if k != "val_iou"} for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
    cols = ["network", "params_M", "gflops", "val_miou", "int8_val_miou", "eager_fp32_fps",
            "openvino_fp32_fps", "openvino_int8_fps", "epochs", "train_img_s", "data_wait_pct",
            "precision", "memory_format"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    classes = list(rows[-1]["val_iou"])
    lines += ["", "| network | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    lines += [
        f"| {r['network']} | " + " | ".join(str(r["val_iou"].get(c, "-")) for c in classes) + " |"
        for r in rows
    ]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, marker, label in (
        ("openvino_int8_fps", "o", "OpenVINO int8"),
        ("openvino_fp32_fps", "s", "OpenVINO fp32"),
        ("eager_fp32_fps", "^", "eager fp32"),
    ):
        xs = [r[key] for r in rows if r[key]]
        ys = [r["val_miou"] for r in rows if r[key]]
        ax.scatter(xs, ys, marker=marker, label=label)
    for r in rows:
        if r["openvino_int8_fps"]:
            ax.annotate(r["network"], (r["openvino_int8_fps"], r["val_miou"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")  # fmt: skip
    ax.axvline(60, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("fps at 360x480, batch 1, 2 threads (2-core AMD EPYC)")
    ax.set_ylabel("CamVid val mIoU")
    ax.set_title("Same CPU training budget per network")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=120)


def seq_column(seq_root: Path, out: Path) -> None:
    """The recorded rows plus each network's last-epoch val mIoU on the held-out sequence."""
    recorded = out / "results.csv"
    if not recorded.is_file():
        refuse(f"no {recorded} to add the column to (write the table first)")
    rows = list(csv.DictReader(recorded.open()))
    if not any((seq_root / r["network"] / "run.json").is_file() for r in rows):
        refuse(f"no run.json of {', '.join(r['network'] for r in rows)} under {seq_root}")
    lines = [
        "| network | standard val mIoU (train, 480 s) | seq-disjoint val mIoU (0006R0, last epoch) | epochs | wall s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        run = seq_root / r["network"]
        rec = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        vals = (
            [
                float(m["val/miou"])
                for m in csv.DictReader((run / "metrics.csv").open())
                if m.get("val/miou")
            ]
            if rec
            else []
        )
        # a run stopped before its last epoch is shown, marked, and kept out of results.csv
        finished = rec.get("status") == "finished"
        r["seq_val_miou"] = round(100 * vals[-1], 2) if vals and finished else ""
        r["seq_epochs"] = rec.get("epochs", "") if finished else ""
        shown = r["seq_val_miou"] or "-"
        if vals and not finished:
            shown = f"{100 * vals[-1]:.2f} (stopped after epoch {len(vals)}, not ranked)"
        lines.append(
            f"| {r['network']} | {r['val_miou']} | {shown} | {r['seq_epochs'] or len(vals)} | "
            f"{round(rec.get('wall_time_s') or 0)} |"
        )
    with recorded.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "seq_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("root", nargs="?", type=Path, default=None,
                    help="run.sh's runs: train/<exp>/ and bench/<exp>/ (default: logs/pareto, "
                    "unless only --seq is given)")  # fmt: skip
    ap.add_argument("--seq", type=Path, default=None, metavar="DIR",
                    help="seq_column.sh's runs: <network>/run.json + metrics.csv")  # fmt: skip
    ap.add_argument(
        "--out", type=Path, default=HERE, help="where to write (default: beside this file)"
    )
    args = ap.parse_args(argv)
    if args.root is not None or args.seq is None:
        table(args.root or Path("logs/pareto"), args.out)
    if args.seq is not None:
        seq_column(args.seq, args.out)


if __name__ == "__main__":
    main()
