"""Collect the Pareto record: run.json of each training + results.csv of each benchmark.

    .venv/bin/python experiments/camvid_pareto/table.py logs/pareto
    .venv/bin/python experiments/camvid_pareto/table.py --seq logs/pareto_seq   # + seq_column.sh runs

Writes results.csv, README table rows (table.md) and pareto.png (val mIoU against fps, fp32 and
int8) beside this file. ``--seq DIR`` adds the sequence-disjoint column (seq_column.sh: val on the
held-out sequence 0006R0, fixed epochs) to the recorded results.csv and rewrites seq_table.md.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
ORDER = ["camvid_baseline", "camvid_unet_lite0", "camvid_lraspp_lite0", "camvid_ppliteseg_lite0"]


def _number(bench: dict, backend: str, column: str) -> float | None:
    v = bench.get(backend, {}).get(column)
    return float(v) if v else None


def collect(root: Path) -> list[dict]:
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


def main(root: str) -> None:
    rows = collect(Path(root))
    flat = [{k: v for k, v in r.items() if k != "val_iou"} for r in rows]
    with (HERE / "results.csv").open("w", newline="") as f:
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
    (HERE / "table.md").write_text("\n".join(lines) + "\n")
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
    fig.savefig(HERE / "pareto.png", dpi=120)


def seq_column(seq_root: str) -> None:
    """The recorded rows plus each network's last-epoch val mIoU on the held-out sequence."""
    rows = list(csv.DictReader((HERE / "results.csv").open()))
    lines = [
        "| network | standard val mIoU (train, 480 s) | seq-disjoint val mIoU (0006R0, last epoch) | epochs | wall s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        run = Path(seq_root) / r["network"]
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
    with (HERE / "results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (HERE / "seq_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--seq":
        seq_column(sys.argv[2])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "logs/pareto")
