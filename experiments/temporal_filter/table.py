"""Collect the temporal filter's record from rtseg-realtime runs (run.sh): one row per realtime.json.

    .venv/bin/python experiments/temporal_filter/table.py logs/temporal_filter

Writes results.csv, table.md (the README's table) and tc_fps.png (TC against end-to-end fps, one
point per run, by stream) beside this file.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from rtseg.utils.markdown import markdown_table

HERE = Path(__file__).parent


def pct(v):
    return None if v is None else round(100 * v, 2)


def collect(root: Path) -> list[dict]:
    rows = []
    for path in sorted(root.glob("*/realtime.json")):
        info = json.loads(path.read_text())
        s = info["summary"]
        quality = info.get("stream_quality") or {}
        rows.append(
            {
                "run": path.parent.name,
                "source": Path(s["source"]).name,
                "model": s["model"],
                "backend": f"{s['backend']} ({s['precision']})",
                "temporal": s.get("temporal", "none"),
                "frames": s["frames"],
                "tc_pct": pct(s.get("tc")),
                "change_pct": pct(s.get("change_rate")),
                "stream_miou_pct": pct(s.get("stream_miou")),
                "stream_agreement_pct": pct(s.get("stream_agreement")),
                "pipeline_fps": round(s["pipeline_fps"], 1),
                "sequential_fps": round(s["sequential_fps"], 1)
                if s.get("sequential_fps")
                else None,
                "latency_p50_ms": round(s["latency_p50_ms"], 1),
                "postprocess_ms": round(
                    info["pipeline"]["latency_ms"]["postprocess"]["median_ms"] or 0, 2
                ),
                "tc_size": "x".join(map(str, quality.get("size") or [])),
                "threads": info["threads"],
            }
        )
    return rows


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for source in sorted({r["source"] for r in rows}):
        pts = [r for r in rows if r["source"] == source and r["tc_pct"] is not None]
        ax.plot([r["pipeline_fps"] for r in pts], [r["tc_pct"] for r in pts], "o", label=source)
        for r in pts:
            ax.annotate(r["temporal"], (r["pipeline_fps"], r["tc_pct"]), fontsize=8)
    ax.set_xlabel("pipeline fps (end to end)")
    ax.set_ylabel("temporal consistency TC (%)")
    ax.set_title("temporal filter: TC against speed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(root: str) -> None:
    rows = collect(Path(root))
    if not rows:
        raise SystemExit(f"no */realtime.json under {root}: run run.sh first")
    with (HERE / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cols = [
        "source",
        "backend",
        "temporal",
        "TC %",
        "change %",
        "stream mIoU %",
        "pipeline fps",
        "sequential fps",
        "latency p50 ms",
        "postprocess ms",
    ]
    keys = [
        "source",
        "backend",
        "temporal",
        "tc_pct",
        "change_pct",
        "stream_miou_pct",
        "pipeline_fps",
        "sequential_fps",
        "latency_p50_ms",
        "postprocess_ms",
    ]
    table = markdown_table(cols, [["-" if r[k] is None else r[k] for k in keys] for r in rows])
    (HERE / "table.md").write_text(table)
    plot(rows, HERE / "tc_fps.png")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "logs/temporal_filter")
