"""The fold table of folds.sh's runs: last-epoch val mIoU per change x held-out sequence x seed,
the mean and the spread, and whether a change's gain over the recipe exceeds the spread.

    .venv/bin/python experiments/camvid_folds/table.py logs/camvid_folds

Run folders are ``<change>_<fold>_s<seed>``. The figure that counts is the last epoch's val mIoU
(the recipe trains fixed epochs and selects nothing). The spread of a change's gain is the standard
deviation of its paired differences to ``base`` (same fold, same seed); the noise floor is the
recipe's own seed-to-seed difference, averaged over folds. A change enters the recipe only when
its mean gain exceeds both. Writes folds.csv and folds.md beside this file; a run still going or
stopped is listed with the epochs it reached, not ranked.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
from pathlib import Path

from rtseg.utils.markdown import markdown_table

HERE = Path(__file__).parent
NAME = re.compile(r"^(?P<change>.+)_(?P<fold>0001TP|0006R0|0016E5)_s(?P<seed>\d+)$")


def last_val(run: Path) -> tuple[int | None, float | None]:
    """(last validated epoch, its val mIoU in %) from metrics.csv."""
    epoch = miou = None
    path = run / "metrics.csv"
    if not path.is_file():
        return None, None
    for row in csv.DictReader(path.open()):
        if row.get("val/miou"):
            epoch, miou = int(float(row["epoch"])), 100 * float(row["val/miou"])
    return epoch, miou


def collect(root: Path) -> list[dict]:
    rows = []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        m = NAME.match(run.name)
        if not m:
            continue
        record = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        epoch, miou = last_val(run)
        rows.append(
            {
                "change": m["change"], "fold": m["fold"], "seed": int(m["seed"]),
                "status": record.get("status"), "epoch": epoch, "val_miou_last": miou,
                "epochs": record.get("epochs"),
            }
        )  # fmt: skip
    return rows


def summarise(rows: list[dict]) -> tuple[list[list], list[str]]:
    done = {(r["change"], r["fold"], r["seed"]): r["val_miou_last"] for r in rows
            if r["status"] == "finished" and r["val_miou_last"] is not None}  # fmt: skip
    changes = sorted({c for c, _, _ in done}, key=lambda c: (c != "base", c))
    folds = sorted({f for _, f, _ in done})
    base_seed_spread = []
    for f in folds:
        vals = [v for (c, ff, _), v in done.items() if c == "base" and ff == f]
        if len(vals) > 1:
            base_seed_spread.append(max(vals) - min(vals))
    noise = statistics.mean(base_seed_spread) if base_seed_spread else None
    table, notes = [], []
    for c in changes:
        per_fold = []
        for f in folds:
            vals = [v for (cc, ff, _), v in done.items() if cc == c and ff == f]
            per_fold.append(f"{statistics.mean(vals):.2f} ({len(vals)})" if vals else "-")
        allv = [v for (cc, _, _), v in done.items() if cc == c]
        deltas = [v - done[("base", f, s)] for (cc, f, s), v in done.items()
                  if cc == c and c != "base" and ("base", f, s) in done]  # fmt: skip
        mean_d = statistics.mean(deltas) if deltas else None
        sd_d = statistics.stdev(deltas) if len(deltas) > 1 else None
        floor = max(x for x in (sd_d, noise) if x is not None) if (sd_d or noise) else None
        verdict = "-"
        if mean_d is not None and floor is not None:
            verdict = "enters" if mean_d > floor else "within the noise"
        table.append([c, *per_fold, f"{statistics.mean(allv):.2f}" if allv else "-",
                      "-" if mean_d is None else f"{mean_d:+.2f}",
                      "-" if sd_d is None else f"{sd_d:.2f}", len(deltas), verdict])  # fmt: skip
    if noise is not None:
        notes.append(f"recipe seed-to-seed spread (mean over folds): {noise:.2f} points")
    return [
        ["change", *folds, "mean", "gain vs base", "sd of gain", "pairs", "decision"],
        *table,
    ], notes


def main(root: str) -> None:
    rows = collect(Path(root))
    if not rows:
        raise SystemExit(f"no <change>_<fold>_s<seed> runs under {root}: run folds.sh first")
    with (HERE / "folds.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (header, *body), notes = summarise(rows)
    pending = [f"{r['change']}_{r['fold']}_s{r['seed']} ({r['status']}, epoch {r['epoch']})"
               for r in rows if r["status"] != "finished"]  # fmt: skip
    text = markdown_table(header, body)
    text += "".join(f"\n{n}" for n in notes)
    if pending:
        text += "\nnot finished, not ranked: " + ", ".join(pending)
    (HERE / "folds.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "logs/camvid_folds")
