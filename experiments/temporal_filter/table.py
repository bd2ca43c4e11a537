"""Collect the temporal filter's record from rtseg-realtime runs (run.sh): one row per realtime.json.

    .venv/bin/python experiments/temporal_filter/table.py logs/temporal_filter

Writes results.csv, table.md (the README's table) and tc_fps.png (TC against end-to-end fps, one
point per run, by stream) beside this file, or into --out. With no realtime.json found it writes
nothing and exits 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
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
                "cpu": info.get("cpu"),
                "source": Path(s["source"]).name,
                "model": s["model"],
                "backend": f"{s['backend']} ({s['precision']})",
                "temporal": s.get("temporal", "none"),
                "requested": (info.get("temporal") or {}).get("requested") or s.get("temporal"),
                "live": info.get("drop") == "latest",
                "dropped": info["pipeline"]["frames_dropped"],
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("root", nargs="?", type=Path, default=Path("logs/temporal_filter"),
                    help="run.sh's runs: */realtime.json (default: logs/temporal_filter)")  # fmt: skip
    ap.add_argument(
        "--out", type=Path, default=HERE, help="where to write (default: beside this file)"
    )
    args = ap.parse_args(argv)
    root, out = args.root, args.out
    rows = collect(root)
    if not rows:
        print(f"error: no */realtime.json under {root} (run run.sh first): nothing written",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # one line per stream x requested filter: medians over the repetitions (run.sh REPS)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["source"], r["live"], r["requested"]), []).append(r)

    def med(rs, k):
        vals = [r[k] for r in rs if r[k] is not None]
        return round(float(statistics.median(vals)), 2) if vals else "-"

    cols = ["source", "played", "temporal (chosen)", "backend", "runs", "TC %", "change %",
            "stream mIoU %", "pipeline fps", "postprocess ms", "latency p50 ms", "dropped"]  # fmt: skip
    lines = []
    for (source, live, requested), rs in groups.items():
        chosen = sorted({r["temporal"] for r in rs})
        lines.append([
            source, "live (25 fps)" if live else "file", f"{requested} ({', '.join(chosen)})",
            rs[0]["backend"], len(rs), med(rs, "tc_pct"), med(rs, "change_pct"),
            med(rs, "stream_miou_pct"), med(rs, "pipeline_fps"), med(rs, "postprocess_ms"),
            med(rs, "latency_p50_ms"), med(rs, "dropped"),
        ])  # fmt: skip
    table = markdown_table(cols, lines)
    (out / "table.md").write_text(table)
    plot(rows, out / "tc_fps.png")
    print(table)


if __name__ == "__main__":
    main()
