"""Accuracy against speed on the folds: each change's fold mean (table.py's ranking figure) beside
the speed of its network at the size it runs at, measured by rtseg-bench on this machine.

    REPEAT=3 bash experiments/camvid_folds/speed.sh               # rtseg-bench per change, alone
    .venv/bin/python experiments/camvid_folds/table.py logs/camvid_folds      # folds.csv, first
    .venv/bin/python experiments/camvid_folds/frontier.py logs/camvid_folds_speed

Speed does not depend on the weights, so one fold checkpoint per change stands for all of them
(speed.sh benches ``<change>_0016E5_s42``). The accuracy comes from folds.csv, the record of every
session's fold runs that table.py keeps (run folders do not outlive a machine). Writes frontier.md
and frontier.png beside this file (``--out``): the changes that no other change beats in both mIoU
and int8 fps are the frontier. Without speed results nothing is written.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import statistics
import sys
from pathlib import Path

from rtseg.utils.markdown import markdown_table

HERE = Path(__file__).parent
# speed.sh's rows: the backend a deployment runs (OpenVINO int8) and the fp32 reference
BACKENDS = ("openvino-int8", "eager")


def _table_module():
    spec = importlib.util.spec_from_file_location("camvid_folds_table", HERE / "table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def speeds(bench_root: Path) -> dict[str, dict]:
    """change -> {input, runs, (backend, tta) -> model-only latency in ms} from the results.csv
    under ``<change>/`` (one per ``speed.sh`` repeat: ``<change>/r<i>/``).

    Over repeats the fastest median counts: on a shared VM other tenants only ever add time (the
    same int8 network read 13.9 and 22.1 ms five minutes apart), like ``timeit``'s minimum.
    """
    out: dict[str, dict] = {}
    for path in sorted(bench_root.glob("**/results.csv")):
        rows = [r for r in csv.DictReader(path.open()) if not r["model"].startswith("peer:")]
        if not rows:
            continue
        change = path.relative_to(bench_root).parts[0]
        entry = out.setdefault(change, {"input": rows[0]["input_size"], "runs": 0, "ms": {}})
        entry["runs"] += 1
        for r in rows:
            if r["backend"] in BACKENDS and r.get("latency_ms_median"):
                key, ms = (r["backend"], r.get("tta") or "none"), float(r["latency_ms_median"])
                entry["ms"][key] = min(ms, entry["ms"].get(key, ms))
    return out


def frontier(points: dict[str, tuple[float, float]]) -> set[str]:
    """Names no other point beats in both coordinates (higher mIoU, higher fps)."""
    return {n for n, (m, f) in points.items()
            if not any(m2 >= m and f2 >= f and (m2, f2) != (m, f) for m2, f2 in points.values())}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )  # fmt: skip
    ap.add_argument("bench_root", type=Path, nargs="?", default=Path("logs/camvid_folds_speed"),
                    help="speed.sh's output (default: logs/camvid_folds_speed)")  # fmt: skip
    ap.add_argument("--folds", type=Path, default=HERE / "folds.csv",
                    help="table.py's per-run record (default: the committed folds.csv)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=HERE,
                    help="where frontier.md and frontier.png go (default: beside this script)")  # fmt: skip
    args = ap.parse_args(argv)
    measured = speeds(args.bench_root) if args.bench_root.is_dir() else {}
    if not measured:
        print(f"no <change>/results.csv under {args.bench_root}: run speed.sh first (nothing "
              "written)", file=sys.stderr)  # fmt: skip
        return 2
    if not args.folds.is_file():
        print(
            f"{args.folds}: no fold record (run table.py first; nothing written)", file=sys.stderr
        )
        return 2
    rows = _table_module().read_rows(args.folds)
    write(rows, measured, args.out)
    return 0


def write(rows: list[dict], measured: dict, out: Path) -> None:
    # runs cover different folds, and folds differ by more than the changes do: each change is
    # placed at the recipe's mean plus its mean paired gain over the recipe (same fold and seed)
    plain = {
        (r["change"], r["fold"], r["seed"]): r["miou_last"] for r in rows if r.get("miou_last")
    }
    flip = {(r["change"], r["fold"], r["seed"]): r["ckpt_flip"] for r in rows
            if r.get("ckpt_flip") and r.get("miou_last")}  # fmt: skip
    base_mean = statistics.mean(v for (c, _, _), v in plain.items() if c == "base")

    def anchored(scores: dict) -> tuple[float, int] | None:
        gains = [v - plain[("base", f, s)] for (c, f, s), v in scores.items()
                 if c == change and ("base", f, s) in plain]  # fmt: skip
        return (base_mean + statistics.mean(gains), len(gains)) if gains else None

    body, points = [], {}
    for change, speed in sorted(measured.items(), key=lambda kv: (kv[0] != "base", kv[0])):
        acc, acc_flip = anchored(plain), anchored(flip)
        if acc is None:
            continue
        int8 = speed["ms"].get(("openvino-int8", "none"))
        flip8 = speed["ms"].get(("openvino-int8", "flip"))
        eager = speed["ms"].get(("eager", "none"))
        if int8:
            points[change] = (acc[0], 1000 / int8)
        if acc_flip and flip8:
            points[f"{change}+flip"] = (acc_flip[0], 1000 / flip8)
        body.append([change, speed["input"], speed["runs"], f"{acc[0]:.2f} ({acc[1]})",
                     f"{acc_flip[0]:.2f} ({acc_flip[1]})" if acc_flip else "-",
                     f"{eager:.1f}" if eager else "-", f"{int8:.1f}" if int8 else "-",
                     f"{1000 / int8:.1f}" if int8 else "-",
                     f"{1000 / flip8:.1f}" if flip8 else "-"])  # fmt: skip
    best = frontier(points)
    for row in body:
        row.append("yes" if row[0] in best else "")
    header = ["change", "input", "speed runs", "mIoU (pairs)", "with flip (pairs)", "eager fp32 ms",
              "OpenVINO int8 ms", "int8 fps", "int8 fps with flip", "on the frontier"]  # fmt: skip
    text = (
        f"Last-epoch val mIoU on the folds (rtseg-eval, fp32) placed as the recipe's mean over all "
        f"its runs ({base_mean:.2f}) plus the change's mean paired gain over the recipe (pairs: same "
        f"fold and seed), against model-only latency (rtseg-bench, batch 1: the fastest median over "
        f"the speed runs):\n\n" + markdown_table(header, body)
    )
    (out / "frontier.md").write_text(text)
    print(text)
    plot(points, best, out / "frontier.png")


def plot(points: dict[str, tuple[float, float]], best: set[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (miou, fps) in points.items():
        ax.scatter(fps, miou, color="tab:red" if name in best else "tab:blue")
        ax.annotate(name, (fps, miou), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("OpenVINO int8 fps (model only, batch 1)")
    ax.set_ylabel("val mIoU on the folds (%): recipe mean + paired gain")
    ax.set_title("CamVid folds: accuracy against speed (red: the frontier)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
