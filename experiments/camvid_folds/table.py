"""The fold table of folds.sh's runs: last-epoch val mIoU per change x held-out sequence x seed,
the mean and the spread, whether a change's gain over the recipe exceeds the spread, and what each
test-time augmentation adds to the same weights.

    .venv/bin/python experiments/camvid_folds/evaluate.py logs/camvid_folds   # scores, first
    .venv/bin/python experiments/camvid_folds/table.py logs/camvid_folds

Run folders are ``<change>_<fold>_s<seed>``. The figure that ranks is the last epoch's val mIoU
(the recipe trains fixed epochs and selects nothing) as rtseg-eval scores it (fp32, evaluate.py).
Training's own val figure is not used: until 8bdd431 it was taken in bf16 autocast where
bf16-mixed trained faster (41.34 there, 40.72 in fp32 for one fold checkpoint), and until 41fd211
last.ckpt held the best epoch rather than the last, so such runs have no last-epoch weights to
score unless their best epoch was the last (evaluate.py records which epoch last.ckpt holds).

A change's gain is its paired difference to ``base`` (same fold, same seed), or to the control
named in REFERENCE (ft450, a fine-tune for 450x600 frames, against ft360, the same fine-tune at
the recipe's size, so that the extra epochs are not counted as the resolution's); the noise floor is
the recipe's own seed-to-seed difference averaged over folds; a change enters the recipe only when
its mean gain exceeds both that and the standard deviation of its gains. Writes folds.csv and
folds.md beside this file (``--out``); runs still going or stopped are listed, not ranked.

The committed folds.csv is the record of every session's runs, and run folders do not outlive a
machine: rows of runs that are not under the log folder are kept from it (``--keep``), a run that
is there replaces its row. With no run under the log folder nothing is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from pathlib import Path

from rtseg.utils.markdown import markdown_table

HERE = Path(__file__).parent
NAME = re.compile(r"^(?P<change>.+)_(?P<fold>0001TP|0006R0|0016E5)_s(?P<seed>\d+)$")
# evaluate.py's modes against plain (fp32): what each costs in network passes
TTA_MODES = {"flip": "2 passes", "ms": "4 passes (0.75/1/1.25/1.5)", "ms_flip": "8 passes",
             "up": "1 pass at 450x600 (1.56x pixels)"}  # fmt: skip
# the runs each change is paired against (default: base, the recipe): ft450 against the recipe (is
# camvid fine-tuned for 450x600 frames better than camvid?) and against ft360 (is it the size, or
# the extra epochs?); ft540 the same for 540x720 frames, and against ft450 (which size?).
# kd* (a fine-tune learning the fold teacher's targets) against the same fine-tune without them;
# kdcwd360 (channel-wise) also against kdft360 (per-pixel): which loss?
REFERENCE = {
    "ft450": ("base", "ft360"),
    "ft540": ("base", "ft360", "ft450"),
    "kdft360": ("ft360", "base"),
    "kdcwd360": ("ft360", "kdft360"),
    "kdagree360": ("ft360", "kdft360"),  # only where the teacher agrees with the label
    "kdft540": ("ft540", "ft450"),
    "ft450long": ("ft450",),  # a teacher trained 3x as long
    "kdlong360": ("ft360", "kdft360"),  # learning that teacher: does the teacher's quality decide?
    # the thin classes' losses (Dice, OHEM, boundary-aware CE), each added to ft360
    "ftdice360": ("ft360",),
    "ftohem360": ("ft360",),
    "ftbound360": ("ft360",),
}


def val_by_epoch(run: Path) -> dict[int, float]:
    """Training's own val mIoU (%) per validated epoch, from metrics.csv."""
    path = run / "metrics.csv"
    if not path.is_file():
        return {}
    return {int(float(r["epoch"])): 100 * float(r["val/miou"])
            for r in csv.DictReader(path.open()) if r.get("val/miou")}  # fmt: skip


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def scores(run: Path) -> tuple[dict, dict, dict]:
    """evaluate.py's scores (%) of last.ckpt per mode, which epoch that file holds, and its plain
    score's per-class IoU (%)."""
    evals = {p.parent.name: 100 * read_json(p)["miou"] for p in run.glob("eval/*/eval.json")}
    plain = read_json(run / "eval" / "plain" / "eval.json").get("iou") or {}
    per_class = {k: 100 * v for k, v in plain.items() if v is not None}
    return evals, read_json(run / "eval" / "checkpoint.json"), per_class


def collect(root: Path) -> list[dict]:
    rows = []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        m = NAME.match(run.name)
        if not m:
            continue
        record = read_json(run / "run.json")
        evals, held, per_class = scores(run)
        last = bool(held.get("last_epoch"))
        in_loop = val_by_epoch(run)
        rows.append(
            {
                "change": m["change"], "fold": m["fold"], "seed": int(m["seed"]),
                "status": record.get("status"), "epochs": record.get("epochs"),
                "last_validated_epoch": max(in_loop) if in_loop else None,
                "training_val_last": in_loop[max(in_loop)] if in_loop else None,
                "ckpt_epoch": held.get("epoch"),
                "miou_last": evals.get("plain") if last else None,
                **{f"iou_{k}": v for k, v in per_class.items() if last},
                **{f"ckpt_{k}": v for k, v in sorted(evals.items())},
            }
        )  # fmt: skip
    return rows


def fmt(v: float | None, sign: bool = False) -> str:
    return "-" if v is None else (f"{v:+.2f}" if sign else f"{v:.2f}")


def ranking(rows: list[dict]) -> tuple[list[list], list[str]]:
    key = "miou_last"
    done = {(r["change"], r["fold"], r["seed"]): r[key] for r in rows if r.get(key) is not None}
    changes = sorted({c for c, _, _ in done}, key=lambda c: (c != "base", c))
    folds = sorted({f for _, f, _ in done})
    seed_spread, per_fold_spread = [], []
    for f in folds:
        vals = [v for (c, ff, _), v in done.items() if c == "base" and ff == f]
        if len(vals) > 1:
            seed_spread.append(max(vals) - min(vals))
            per_fold_spread.append(f"{f} {max(vals) - min(vals):.2f}")
    noise = statistics.mean(seed_spread) if seed_spread else None
    table, notes = [], []
    for c in changes:
        per_fold = []
        for f in folds:
            vals = [v for (cc, ff, _), v in done.items() if cc == c and ff == f]
            per_fold.append(f"{statistics.mean(vals):.2f} ({len(vals)})" if vals else "-")
        allv = [v for (cc, _, _), v in done.items() if cc == c]
        for ref in ("-",) if c == "base" else REFERENCE.get(c, ("base",)):
            deltas = [v - done[(ref, f, s)] for (cc, f, s), v in done.items()
                      if cc == c and (ref, f, s) in done]  # fmt: skip
            mean_d = statistics.mean(deltas) if deltas else None
            sd_d = statistics.stdev(deltas) if len(deltas) > 1 else None
            floors = [x for x in (sd_d, noise) if x is not None]
            verdict = "-"
            if 0 < len(deltas) < 2:
                verdict = "one pair: undecided"  # no spread of gains to beat
            elif mean_d is not None and floors:
                verdict = "enters" if mean_d > max(floors) else "within the noise"
            elif mean_d is not None:
                verdict = "no spread yet"
            table.append([c, *per_fold, fmt(statistics.mean(allv) if allv else None), ref,
                          fmt(mean_d, True), fmt(sd_d), len(deltas), verdict])  # fmt: skip
    if noise is not None:
        notes.append(
            f"recipe seed-to-seed spread (max - min per fold, mean over {len(seed_spread)} folds): "
            f"{noise:.2f} points ({', '.join(per_fold_spread)})"
        )
    header = ["change", *folds, "mean", "against", "paired gain", "sd of gain", "pairs", "decision"]
    return [header, *table], notes


def class_table(rows: list[dict]) -> list[list]:
    """Each change's paired gain per class (points, mean over the pairs with per-class scores)
    against its first reference: where a change's mIoU gain comes from (the thin classes?)."""
    classes = list(dict.fromkeys(k for r in rows for k in r if k.startswith("iou_")))
    if not classes:
        return []
    by = {(r["change"], r["fold"], r["seed"]): r for r in rows if r.get("miou_last") is not None}
    body = []
    for c in sorted({c for c, _, _ in by if c != "base"}):
        ref = REFERENCE.get(c, ("base",))[0]
        pairs = [(r, by[(ref, f, s)]) for (cc, f, s), r in by.items()
                 if cc == c and (ref, f, s) in by and r.get(classes[0]) is not None
                 and by[(ref, f, s)].get(classes[0]) is not None]  # fmt: skip
        if pairs:
            gains = [statistics.mean(a[k] - b[k] for a, b in pairs) for k in classes]
            body.append([c, ref, len(pairs), *(fmt(g, True) for g in gains)])
    return [["change", "against", "pairs", *(k[4:] for k in classes)], *body] if body else []


def tta_table(rows: list[dict]) -> list[list]:
    """Each augmentation's gain over plain fp32 scoring of the same checkpoint, over all runs."""
    body = []
    for mode, cost in TTA_MODES.items():
        gains = [r[f"ckpt_{mode}"] - r["ckpt_plain"] for r in rows
                 if r.get(f"ckpt_{mode}") is not None and r.get("ckpt_plain") is not None]  # fmt: skip
        if not gains:
            continue
        body.append([mode, cost, len(gains), fmt(statistics.mean(gains), True),
                     fmt(statistics.stdev(gains) if len(gains) > 1 else None),
                     f"{min(gains):+.2f}..{max(gains):+.2f}"])  # fmt: skip
    return [["tta", "cost", "runs", "mean gain", "sd", "range"], *body]


def read_rows(path: Path) -> list[dict]:
    """A folds.csv's rows with numbers as numbers (empty cells: None)."""

    def value(k: str, v: str):
        if v == "" or v is None:
            return None
        if k == "seed":
            return int(v)
        if k in ("change", "fold", "status"):  # "0016E5" reads as a float otherwise
            return v
        try:
            return float(v)
        except ValueError:
            return v

    return [{k: value(k, v) for k, v in r.items()} for r in csv.DictReader(path.open())]


def merged(rows: list[dict], kept: list[dict]) -> list[dict]:
    """``rows`` (runs on disk) plus the ``kept`` rows of runs that are not on disk."""
    here = {(r["change"], r["fold"], r["seed"]) for r in rows}
    old = [r for r in kept if (r["change"], r["fold"], r["seed"]) not in here]
    return sorted(rows + old, key=lambda r: (r["change"], r["fold"], -r["seed"]))


def write(rows: list[dict], out: Path) -> str:
    seen = list(dict.fromkeys(k for r in rows for k in r))  # classes in the dataset's order
    fields = sorted(seen, key=lambda k: (k.startswith("iou_") + 2 * k.startswith("ckpt_"),
                                         seen.index(k) if k.startswith("iou_") else 0, k))  # fmt: skip
    fields = ["change", "fold", "seed"] + [k for k in fields if k not in ("change", "fold", "seed")]
    with (out / "folds.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    (header, *body), notes = ranking(rows)
    text = "Last-epoch val mIoU (rtseg-eval, fp32), mean over seeds (runs):\n\n"
    text += markdown_table(header, body).rstrip("\n") + "\n"
    text += "".join(f"\n{n}" for n in notes)
    per_class = class_table(rows)
    if per_class:
        text += "\n\nPer-class IoU gain against the first reference (points, mean over pairs):\n\n"
        text += markdown_table(per_class[0], per_class[1:]).rstrip("\n") + "\n"
    tta_header, *tta_body = tta_table(rows)
    if tta_body:
        text += "\n\nTest-time augmentation on the same checkpoints (rtseg-eval, fp32):\n\n"
        text += markdown_table(tta_header, tta_body).rstrip("\n") + "\n"
    pending = [f"{r['change']}_{r['fold']}_s{r['seed']} ({r['status']}, epoch "
               f"{r['last_validated_epoch']})" for r in rows if r["status"] != "finished"]  # fmt: skip
    unranked = [f"{r['change']}_{r['fold']}_s{r['seed']}" for r in rows
                if r["status"] == "finished" and r.get("miou_last") is None]  # fmt: skip
    if pending:
        text += "\nnot finished, not ranked: " + ", ".join(pending)
    if unranked:
        text += "\nfinished, no last-epoch weights scored (yet): " + ", ".join(unranked)
    (out / "folds.md").write_text(text + "\n")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )  # fmt: skip
    ap.add_argument("root", type=Path, nargs="?", default=Path("logs/camvid_folds"),
                    help="the folder of folds.sh's runs (default: logs/camvid_folds)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=HERE,
                    help="where folds.csv and folds.md go (default: beside this script)")  # fmt: skip
    ap.add_argument("--keep", type=Path, default=HERE / "folds.csv",
                    help="rows kept for runs not under root (default: the committed folds.csv; "
                    "'none': only the runs on disk)")  # fmt: skip
    args = ap.parse_args(argv)
    rows = collect(args.root) if args.root.is_dir() else []
    if not rows:
        print(f"no <change>_<fold>_s<seed> runs under {args.root}: run folds.sh first "
              "(nothing written)", file=sys.stderr)  # fmt: skip
        return 2
    if str(args.keep) != "none" and args.keep.is_file():
        rows = merged(rows, read_rows(args.keep))
    args.out.mkdir(parents=True, exist_ok=True)
    print(write(rows, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
